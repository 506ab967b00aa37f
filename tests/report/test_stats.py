"""The statistics on numbers whose right answers are known by hand."""

import numpy as np
import pytest

from cooperbench.report.stats import clustered_mean, mcnemar, naive_mean


def test_clustered_interval_is_wider_than_the_naive_one_when_a_tasks_pairs_move_together():
    # 6 tasks of 10 pairs each; within a task every pair passes or every pair fails; 3 tasks pass
    values = [1.0] * 30 + [0.0] * 30
    tasks = [i // 10 for i in range(60)]
    clustered = clustered_mean(values, tasks)
    naive = naive_mean(values)
    assert clustered.value == naive.value == 0.5
    assert (clustered.n, clustered.clusters, naive.clusters) == (60, 6, 60)
    # resampling 6 tasks: the rate is Binomial(6, 1/2)/6, whose 2.5% and 97.5% quantiles are 1/6 and 5/6
    assert clustered.low == pytest.approx(1 / 6) and clustered.high == pytest.approx(5 / 6)
    # resampling 60 independent pairs: about 0.5 ± 1.96·sqrt(0.25/60) = [0.37, 0.63]
    assert 0.35 <= naive.low <= 0.40 and 0.60 <= naive.high <= 0.65
    assert clustered.high - clustered.low > 2 * (naive.high - naive.low)


def test_without_correlation_the_two_intervals_agree():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2, 400).astype(float)  # independent coin flips, 40 tasks of 10
    tasks = np.repeat(np.arange(40), 10)
    clustered, naive = clustered_mean(values, tasks), naive_mean(values)
    assert abs((clustered.high - clustered.low) - (naive.high - naive.low)) < 0.03


def test_the_interval_is_repeatable_and_pools_unequal_tasks():
    values = [1, 1, 1, 0, 0, 1, 0]
    tasks = ["a", "a", "a", "a", "b", "c", "c"]
    first, second = clustered_mean(values, tasks), clustered_mean(values, tasks)
    assert first == second  # seeded
    assert first.value == pytest.approx(4 / 7)  # pooled over pairs, not the mean of task means
    assert first.low <= first.value <= first.high


def test_degenerate_and_tiny_data():
    assert clustered_mean([], []).value is None
    one_task = clustered_mean([1, 0, 1], ["t", "t", "t"])
    assert one_task.value == pytest.approx(2 / 3) and one_task.low is None and one_task.high is None
    all_pass = clustered_mean([1, 1, 1, 1], [0, 0, 1, 2])
    assert (all_pass.value, all_pass.low, all_pass.high) == (1.0, 1.0, 1.0)


def test_paired_difference_and_mcnemar():
    # a − b per pair over 4 tasks: task 0 and 1 gain a pass on both pairs, tasks 2 and 3 are unchanged
    diff = [1, 1, 1, 1, 0, 0, 0, 0]
    tasks = [0, 0, 1, 1, 2, 2, 3, 3]
    est = clustered_mean(diff, tasks)
    assert est.value == 0.5
    assert est.low == pytest.approx(0.0) and est.high == pytest.approx(1.0)  # 0 or 4 of the 4 drawn tasks gain
    assert mcnemar(0, 0) == 1.0
    assert mcnemar(10, 0) == pytest.approx(2 * 0.5**10)  # exact two-sided binomial
    assert mcnemar(5, 5) == 1.0

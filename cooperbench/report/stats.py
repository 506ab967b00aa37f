"""Rates and paired differences with 95% intervals from a bootstrap clustered by task.

Pairs of one task share a repository and features, so they are not independent draws: the
bootstrap resamples whole tasks (clusters) with replacement and recomputes the pooled mean
(successes over pairs of the drawn tasks), with `scipy.stats.bootstrap` doing the resampling
(percentile intervals, a fixed seed so a report is repeatable). With fewer than two tasks there
is no interval. The naive interval (each pair its own cluster) is available for comparison.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

SEED = 20240601
RESAMPLES = 4000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    value: float | None  # the pooled mean (a rate, or a difference of rates); None with no data
    low: float | None  # the interval; None with fewer than two clusters
    high: float | None
    n: int  # observations (pairs)
    clusters: int  # tasks

    def to_json(self) -> dict:
        return asdict(self)


def _pooled(sums, counts, axis=-1):
    return np.sum(sums, axis=axis) / np.sum(counts, axis=axis)


def clustered_mean(values, clusters, *, seed: int = SEED, resamples: int = RESAMPLES) -> Estimate:
    """The mean of `values` with a percentile interval from resampling whole clusters."""
    values = np.asarray(values, dtype=float)
    labels = np.asarray(clusters)
    if values.size == 0:
        return Estimate(None, None, None, 0, 0)
    keys, index = np.unique(labels, return_inverse=True)
    sums = np.bincount(index, weights=values, minlength=len(keys))
    counts = np.bincount(index, minlength=len(keys)).astype(float)
    value = float(values.mean())
    if len(keys) < 2:
        return Estimate(value, None, None, int(values.size), len(keys))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # identical resamples (all pass, all fail) give a point interval
        result = stats.bootstrap(
            (sums, counts),
            _pooled,
            paired=True,
            vectorized=True,
            n_resamples=resamples,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low, high = (float(x) for x in result.confidence_interval)
    if np.isnan(low):  # scipy's answer for a distribution of one value
        low = high = value
    return Estimate(value, low, high, int(values.size), len(keys))


def naive_mean(values, *, seed: int = SEED, resamples: int = RESAMPLES) -> Estimate:
    """The same with each observation its own cluster: too narrow when a task's pairs move together."""
    values = np.asarray(values, dtype=float)
    return clustered_mean(values, np.arange(values.size), seed=seed, resamples=resamples)


def mcnemar(only_a: int, only_b: int) -> float:
    """The exact McNemar p-value (a binomial test of the discordant pairs); it ignores clustering."""
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)

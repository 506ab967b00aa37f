"""One experiment's summary and the comparison of two, on hand-made results whose answers are known."""

import json

import pandas as pd
import pytest

from cooperbench import api
from cooperbench.errors import UserError
from cooperbench.report import rows, summary
from cooperbench.report.rows import AGENT_COLUMNS, PAIR_COLUMNS
from cooperbench.store import db

from ..conftest import ROOT, run_cli
from . import handmade


@pytest.fixture
def database(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    handmade.mixed(url)
    handmade.paired(url)
    return url


def test_the_denominator_states_errors_skips_and_unfinished_pairs_apart(database):
    s = summary.summarize(rows.load(database, ["mixed"]), "mixed")
    assert s["denominator"] == {
        "pairs": 10,
        "scored": 6,
        "infra_errors": 2,
        "evaluation_errors": 0,
        "skipped": 1,
        "unfinished": 1,
        "scored_agent_errors": 3,
        "scored_input_errors": 0,
        "disrupted": 0,
    }
    assert (s["both_passed"]["passed"], s["both_passed"]["scored"]) == (3, 6)  # not 3/10, not 3/7
    assert s["both_passed"]["estimate"]["value"] == 0.5
    assert (s["clean_success"]["passed"], s["clean_success"]["estimate"]["value"]) == (2, pytest.approx(1 / 3))
    est = s["both_passed"]["estimate"]
    assert est["clusters"] == 3 and est["low"] < 0.5 < est["high"]
    repos = {r["repo"]: r for r in s["per_repo"]}
    assert (repos["alpha"]["both_passed"], repos["alpha"]["scored"], repos["alpha"]["pairs"]) == (2, 3, 3)
    assert (repos["beta"]["scored"], repos["beta"]["infra_errors"], repos["beta"]["pairs"]) == (3, 1, 4)
    gamma = repos["gamma"]
    assert (gamma["scored"], gamma["infra_errors"], gamma["skipped"], gamma["unfinished"]) == (0, 1, 1, 1)
    assert gamma["estimate"]["value"] is None
    tasks = {t["task"]: (t["both_passed"], t["scored"]) for t in s["per_task"]}
    assert tasks == {"alpha/task1": (2, 3), "beta/task2": (1, 2), "beta/task3": (0, 1), "gamma/task4": (0, 0)}


def test_a_pair_whose_tests_never_ran_is_counted_apart_from_the_farms_errors(tmp_path):
    """An evaluation error (the runner failed before any test) is unscored like an infrastructure
    error, but it is not the farm's failure: the report states each on its own."""
    from cooperbench.report import text
    from cooperbench.statuses import ErrorKind, PairStatus

    url = f"sqlite:///{tmp_path / 'e.db'}"
    handmade.experiment(url, "ungraded")
    handmade.pair(url, "ungraded", "alpha", 1, "1,2", passed=True)
    handmade.pair(url, "ungraded", "alpha", 1, "1,3", status=PairStatus.ERROR, error="sandbox down",
                  error_kind=ErrorKind.INFRA)  # fmt: skip
    handmade.pair(url, "ungraded", "alpha", 1, "2,3", status=PairStatus.ERROR, error_kind=ErrorKind.EVALUATION,
                  error="feature 2: the test runner failed before running any test (exit 1)")  # fmt: skip
    s = summary.summarize(rows.load(url, ["ungraded"]), "ungraded")
    d = s["denominator"]
    assert (d["pairs"], d["scored"], d["infra_errors"], d["evaluation_errors"]) == (3, 1, 1, 1)
    (repo,) = s["per_repo"]
    assert (repo["infra_errors"], repo["evaluation_errors"]) == (1, 1)
    lines = "\n".join(text.experiment(s))
    assert "3 pair(s): 1 scored, 1 infrastructure error(s), 1 not graded (a test runner ran no test)" in lines
    assert "(+1 infra, 1 not graded, 0 skipped, 0 unfinished)" in lines


def test_merges_agents_communication_and_cost(database):
    s = summary.summarize(rows.load(database, ["mixed"]), "mixed")
    assert s["merge"]["outcomes"] == {
        "clean": 3,
        "rescued": 1,
        "conflicts": 1,
        "not_applied": 1,
        "missing_input": 0,
        "error": 0,
    }
    assert s["merge"]["conflict_rate"] == pytest.approx(2 / 5) and s["merge"]["rescue_rate"] == 0.5
    assert s["agent_statuses"] == {"Submitted": 11, "LimitsExceeded": 0, "Error": 1, "InfraError": 4, "Skipped": 2}
    c = s["communication"]
    assert (c["pairs"], c["messages"], c["silent_pairs"]) == (6, 6, 4)
    assert c["messages_per_pair_mean"] == 1.0 and c["message_step_share"] == pytest.approx(6 / 120)
    k = s["cost"]
    assert k["known_cost_usd"] == pytest.approx(0.195)  # the infra errors' spend included, the unknown one not
    assert (k["agents"], k["agents_cost_unknown"], k["pairs_cost_unknown"]) == (18, 1, 1)
    assert (k["input_tokens"], k["output_tokens"]) == (16_000, 1_600)


def test_two_experiments_on_the_same_pairs(database):
    c = summary.compare(rows.load(database, ["coop", "solo"]), "coop", "solo")
    assert (c["pairs"], c["tasks"], c["rate_a"], c["rate_b"]) == (8, 4, 0.5, 0.75)
    bp = c["both_passed"]
    assert bp["counts"] == {"both": 3, "only_a": 1, "only_b": 3, "neither": 1, "mcnemar_p": pytest.approx(0.625)}
    assert bp["estimate"]["value"] == -0.25 and bp["estimate"]["low"] < -0.25 < bp["estimate"]["high"]
    assert c["only_in_a"] == ["r1/task1/f1-f4"] and c["only_in_b"] == ["r2/task3/f1-f4"]
    assert c["not_scored_in_both"] == [{"pair": "r2/task4/f1-f4", "status_a": "error", "status_b": "done"}]
    repos = {r["repo"]: r for r in c["per_repo"]}
    assert (repos["r1"]["rate_a"], repos["r1"]["rate_b"], repos["r1"]["difference"]["estimate"]["value"]) == (
        0.25,
        1.0,
        -0.75,
    )
    assert {k: repos["r1"]["counts"][k] for k in ("both", "only_a", "only_b", "neither")} == {
        "both": 1, "only_a": 0, "only_b": 3, "neither": 0}  # fmt: skip
    assert repos["r2"]["difference"]["estimate"]["value"] == 0.25
    # the naive interval of the difference ignores that pairs of a task move together
    assert bp["naive"]["clusters"] == 8 and bp["estimate"]["clusters"] == 4


def test_cli_table_and_errors(database):
    proc = run_cli("report", "-n", "coop", "-n", "solo", "--db", database)
    assert proc.returncode == 0, proc.stderr
    assert "both passed:   5/9" in proc.stdout and "difference coop − solo: -25.0 pts" in proc.stdout
    assert "only in coop (left out): 1: r1/task1/f1-f4" in proc.stdout
    assert "10 pair(s): 9 scored, 1 infrastructure error(s), 0 skipped (not started), 0 unfinished" in proc.stdout
    proc = run_cli("report", "-n", "coop", "-n", "nope", "--db", database)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["Error: no experiment named 'nope'"]
    for names, fmt, message in (
        (["coop", "coop"], "table", "named twice"),
        (["coop"], "parquet", "give a folder with -o"),
        ([], "table", "at least one experiment"),
    ):
        with pytest.raises(UserError, match=message):
            api.report(names, db_url=database, fmt=fmt)


def _check_exports(out, fmt):
    read = {"csv": pd.read_csv, "json": pd.read_json, "parquet": pd.read_parquet}[fmt]
    pairs, agents = read(out / f"pairs.{fmt}"), read(out / f"agents.{fmt}")
    assert list(pairs.columns) == list(PAIR_COLUMNS) and list(agents.columns) == list(AGENT_COLUMNS)
    assert len(pairs) == 10 + 10 and len(agents) == 18 + 20
    mixed = pairs[pairs["experiment"] == "mixed"]
    assert int(mixed["scored"].sum()) == 6 and int(mixed["both_passed"].sum()) == 3
    assert sorted(mixed["status"].unique()) == ["done", "error", "queued", "skipped"]
    assert int(agents["cost_known"].eq(False).sum()) == 1
    assert mixed.set_index("pair").at["alpha/task1/f1-f3", "merge_outcome"] == "rescued"


def test_exports_have_the_documented_columns(database, tmp_path):
    proc = run_cli("report", "-n", "mixed", "-n", "coop", "--db", database, "--format", "parquet", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    _check_exports(tmp_path, "parquet")
    for fmt in ("csv", "json"):
        api.report(["mixed", "coop"], db_url=database, fmt=fmt, output=tmp_path / fmt)
        _check_exports(tmp_path / fmt, fmt)
    assert json.loads((tmp_path / "json" / "summary.json").read_text())["comparisons"][0]["a"] == "mixed"


def test_every_column_is_documented():
    doc = (ROOT / "docs" / "report.md").read_text()
    missing = [c for c in {**PAIR_COLUMNS, **AGENT_COLUMNS} if f"`{c}`" not in doc]
    assert missing == []


def test_api_report_returns_the_summaries(database):
    result = api.report(["coop", "solo"], db_url=database)
    assert [s["experiment"] for s in result["experiments"]] == ["coop", "solo"]
    assert result["comparisons"][0]["both_passed"]["counts"]["only_b"] == 3


def test_an_experiment_with_no_pairs_yet(database, tmp_path):
    handmade.experiment(database, "empty")
    result = api.report(["empty", "coop"], db_url=database, fmt="html", output=tmp_path / "html")
    s, c = result["experiments"][0], result["comparisons"][0]
    assert s["denominator"]["pairs"] == 0 and s["both_passed"]["estimate"]["value"] is None
    assert c["pairs"] == 0 and c["both_passed"]["estimate"]["value"] is None and len(c["only_in_b"]) == 10
    assert "0/0 both passed" in (tmp_path / "html" / "index.html").read_text()


def test_what_agents_wrote_is_escaped_in_every_page(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    handmade.experiment(url, "hostile")
    handmade.pair(url, "hostile", "r1", 1, "1,2", messages=1, error="<script>alert('error')</script>",
                  error_kind="agent")  # fmt: skip
    db.upsert(url, db.MessageRow(id="hostile|r1/task1/f1-f2|1", experiment="hostile", pair_id="hostile|r1/task1/f1-f2",
                                 seq=1, sender="agent2", recipient="agent1", body="<img src=x onerror=alert(1)>",
                                 sent_at=1.0))  # fmt: skip
    api.report(["hostile"], db_url=url, fmt="html", output=tmp_path / "html")
    pages = [p.read_text() for p in (tmp_path / "html").rglob("*.html")]
    assert len(pages) == 2
    assert all("<script>alert" not in page and "<img src=x" not in page for page in pages)
    assert any("&lt;script&gt;alert(&#39;error&#39;)&lt;/script&gt;" in page for page in pages)
    assert any("&lt;img src=x onerror=alert(1)&gt;" in page for page in pages)

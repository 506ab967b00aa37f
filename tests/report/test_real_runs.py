"""Reports of real runs on the bundled dataset (gold, nop, and a scripted model served over the OpenAI
protocol), the live progress line of `run`, and the HTML report opened in Debian's headless chromium."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from cooperbench.data.dataset import Dataset
from cooperbench.errors import UserError
from cooperbench.grading.checks import conflicts
from cooperbench.report import rows, summary, text
from cooperbench.store.results import records

from ..conftest import DATASET, run_cli
from ..fake_openai import FakeOpenAI

KEY = "sk-test-report-0f9e"
SUBMIT = "Done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"
HOSTILE_MESSAGE = "<script>window.__pwned = 1</script> I add incr/decr in memkv/store.py"
HOSTILE_FILE = '<img src=x onerror="window.__pwned = 2">'
SCRIPTED_PAIR = "memkv_task/task2/f1-f4"  # its gold patches merge cleanly
TASK = Dataset(DATASET).task("memkv_task", 2)


def bash(command: str) -> str:
    return f"Next step.\n\n```bash\n{command}\n```"


def apply_gold(feature: int) -> str:
    return bash(f"cat > /tmp/p.patch <<'EOF'\n{TASK.feature(feature).gold_patch}EOF\ngit apply /tmp/p.patch")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Four real experiments in one database: gold coop, gold solo and nop coop on the `lite` subset (6 pairs
    of 3 tasks), and a scripted model (coop, one pair) whose agents talk and write hostile text."""
    work = tmp_path_factory.mktemp("runs")
    env = {"COOPERBENCH_DB_URL": f"sqlite:///{work / 'r.db'}", "COOPERBENCH_LOGS": str(work / "logs")}
    out = {"db": env["COOPERBENCH_DB_URL"], "work": work, "stderr": {}}
    for name, args in (
        ("gold-coop", ["-a", "gold", "--setting", "coop"]),
        ("gold-solo", ["-a", "gold", "--setting", "solo"]),
        ("nop-coop", ["-a", "nop", "--setting", "coop"]),
    ):
        proc = run_cli("run", "-n", name, *args, "-s", "lite", "--dataset", str(DATASET), env=env)
        assert proc.returncode == 0, proc.stderr
        out["stderr"][name] = proc.stderr
    (work / "agent.yaml").write_text(yaml.safe_dump({"retry_base_delay": 0.01, "step_limit": 6}))
    scripts = {
        "agent1": [apply_gold(1), bash(f"send_message agent2 '{HOSTILE_MESSAGE}'"), SUBMIT],
        "agent2": [apply_gold(4), bash(f"echo '{HOSTILE_FILE}' > notes.html"), SUBMIT],
    }
    with FakeOpenAI(scripts) as fake:
        model_env = {"OPENAI_API_BASE": fake.base_url, "OPENAI_API_KEY": KEY, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        proc = run_cli(
            "run", "-n", "scripted", "-m", "openai/gpt-4o", "--agent-config", str(work / "agent.yaml"),
            "--dataset", str(DATASET), "-r", "memkv_task", "-t", "2", "-f", "1,4", "-j", "2",
            env={**env, **model_env},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out["stderr"]["scripted"] = proc.stderr
    try:
        out["rows"] = rows.load(out["db"], ["gold-coop", "gold-solo", "nop-coop", "scripted"])
    except UserError as exc:  # say what the runs said
        pytest.fail(f"{exc}\n" + "\n".join(f"--- {n}:\n{e[-2000:]}" for n, e in out["stderr"].items()))
    out["report"] = summary.report(out["rows"], ["gold-coop", "gold-solo", "nop-coop", "scripted"])
    return out


def _summary(runs, name):
    return next(s for s in runs["report"]["experiments"] if s["experiment"] == name)


def test_gold_solo_and_nop(runs):
    solo = _summary(runs, "gold-solo")
    assert solo["denominator"]["scored"] == solo["denominator"]["pairs"] == 6
    assert solo["both_passed"]["passed"] == 6
    assert solo["both_passed"]["estimate"] == {"value": 1.0, "low": 1.0, "high": 1.0, "n": 6, "clusters": 3}
    assert solo["agent_statuses"]["Submitted"] == 6 and solo["communication"] is None
    # gold reports no cost: flagged as unknown, not summed as zero
    assert (solo["cost"]["agents_cost_unknown"], solo["cost"]["known_cost_usd"]) == (6, 0.0)
    nop = _summary(runs, "nop-coop")
    assert (nop["both_passed"]["passed"], nop["denominator"]["scored"]) == (0, 6)
    assert nop["both_passed"]["estimate"]["high"] == 0.0
    assert nop["communication"]["silent_pairs"] == 6 and nop["communication"]["messages"] == 0


def test_gold_coop_matches_the_stored_records_and_the_conflict_check(runs):
    coop = _summary(runs, "gold-coop")
    recs = records(runs["db"], "gold-coop")
    assert coop["both_passed"]["passed"] == sum(r["both_passed"] for r in recs)
    assert coop["clean_success"]["passed"] == sum(r["clean_success"] for r in recs)
    ds = Dataset(DATASET)
    found = conflicts(ds, ds.pairs(subset="lite"))
    clean = sum(c["status"] == "clean" for c in found)
    outcomes = coop["merge"]["outcomes"]
    assert outcomes["clean"] == clean and outcomes["rescued"] + outcomes["conflicts"] == 6 - clean
    assert coop["communication"]["messages"] == 12 and coop["communication"]["silent_pairs"] == 0
    assert coop["communication"]["messages_per_pair_median"] == 2.0


def test_coop_against_solo_on_the_same_pairs(runs):
    comp = summary.compare(runs["rows"], "gold-coop", "gold-solo")
    failures = 6 - _summary(runs, "gold-coop")["both_passed"]["passed"]
    assert comp["pairs"] == 6 and comp["tasks"] == 3
    counts = comp["both_passed"]["counts"]
    assert (counts["both"], counts["only_a"], counts["only_b"], counts["neither"]) == (6 - failures, 0, failures, 0)
    assert comp["both_passed"]["estimate"]["value"] == pytest.approx(-failures / 6)
    assert comp["only_in_a"] == comp["only_in_b"] == [] and comp["not_scored_in_both"] == []
    scripted = summary.compare(runs["rows"], "scripted", "gold-coop")
    assert scripted["pairs"] == 1 and len(scripted["only_in_b"]) == 5 and SCRIPTED_PAIR not in scripted["only_in_b"]


def test_scripted_model_costs_tokens_and_conversation(runs):
    s = _summary(runs, "scripted")
    assert s["both_passed"]["passed"] == 1 and s["agent_statuses"]["Submitted"] == 2
    cost = s["cost"]
    assert cost["agents_cost_unknown"] == 0 and cost["known_cost_usd"] > 0  # gpt-4o has a price
    assert (cost["input_tokens"], cost["output_tokens"]) == (600, 120)  # 3 answers of 100 + 20 tokens per agent
    assert s["communication"]["messages"] == 1 and s["communication"]["message_step_share"] == pytest.approx(1 / 6)


def test_run_shows_live_progress(runs):
    lines = [line for line in runs["stderr"]["gold-coop"].splitlines() if line.startswith("gold-coop: ")]
    assert lines[0].startswith("gold-coop: 0/6 pair(s) finished")
    last = lines[-1]
    passed = _summary(runs, "gold-coop")["both_passed"]["passed"]
    assert last.startswith(f"gold-coop: 6/6 pair(s) finished; passed {passed}/6 scored")
    assert "cost $0.0000 (+12 unknown)" in last and "infra errors 0" in last
    assert any(" left" in line for line in lines[1:-1])


# ---- the HTML report in a real browser ----

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Debian's chromium and chromium-driver are needed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_html_report_in_a_headless_browser(runs, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    folder = tmp_path / "report"
    proc = run_cli(
        "report", "-n", "gold-coop", "-n", "gold-solo", "-n", "nop-coop", "-n", "scripted",
        "--format", "html", "-o", str(folder), env={"COOPERBENCH_DB_URL": runs["db"]},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    browser.get((folder / "index.html").as_uri())
    assert browser.execute_script("return document.readyState") == "complete"

    # the summary cards say what the statistics say
    for s in runs["report"]["experiments"]:
        card = browser.find_element(By.CSS_SELECTOR, f'.card[data-experiment="{s["experiment"]}"]')
        d = s["denominator"]
        field = lambda name: card.find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text  # noqa: B023
        assert field("both_passed") == f"{s['both_passed']['passed']}/{d['scored']} both passed"
        assert field("both_passed_ci") == text.ci(s["both_passed"]["estimate"])
        assert field("denominator") == text.denominator_line(d)
    comparisons = browser.find_elements(By.CSS_SELECTOR, ".card.comparison")
    assert len(comparisons) == 3
    first = runs["report"]["comparisons"][0]
    assert comparisons[0].find_element(By.CSS_SELECTOR, '[data-field="difference"]').text == text.signed(
        first["both_passed"]["estimate"]
    )

    # every plot is drawn, and each shows its numbers
    images = browser.find_elements(By.CSS_SELECTOR, ".plots img")
    assert len(images) == 4
    assert all(
        browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in images
    )
    plot_text = {}
    for name in ("pass_rate_per_repo", "difference_per_repo", "pass_rate_against_cost", "merge_rates"):
        browser.get((folder / "plots" / f"{name}.svg").as_uri())
        plot_text[name] = browser.execute_script("return document.documentElement.textContent")
    assert "100%" in plot_text["pass_rate_per_repo"] and "memkv_task" in plot_text["pass_rate_per_repo"]
    diff = round(100 * first["both_passed"]["estimate"]["value"])
    assert f"{diff:+d} pts" in plot_text["difference_per_repo"].replace("−", "-")
    assert "scripted: 100% at $" in plot_text["pass_rate_against_cost"]
    assert "cost unknown: gold-coop, gold-solo, nop-coop" in plot_text["pass_rate_against_cost"]
    coop_merge = _summary(runs, "gold-coop")["merge"]
    assert f"{100 * coop_merge['conflict_rate']:.0f}%" in plot_text["merge_rates"]

    # the pair table: every pair, filterable and sortable (the report's own script runs under its CSP)
    browser.get((folder / "index.html").as_uri())
    table_rows = lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "#pairs tbody tr") if r.is_displayed()]
    assert len(table_rows()) == 6 + 6 + 6 + 1 and browser.find_element(By.ID, "shown-count").text == "19"
    Select(browser.find_element(By.ID, "filter-experiment")).select_by_visible_text("gold-coop")
    Select(browser.find_element(By.ID, "filter-outcome")).select_by_visible_text("yes")
    passed = _summary(runs, "gold-coop")["both_passed"]["passed"]
    assert len(table_rows()) == passed and browser.find_element(By.ID, "shown-count").text == str(passed)
    Select(browser.find_element(By.ID, "filter-outcome")).select_by_visible_text("any result")
    browser.find_element(By.XPATH, "//th[text()='pair']").click()
    browser.find_element(By.XPATH, "//th[text()='pair']").click()  # descending
    keys = [r.find_elements(By.TAG_NAME, "td")[1].text for r in table_rows()]
    assert keys == sorted(keys, reverse=True) and len(keys) == 6
    Select(browser.find_element(By.ID, "filter-experiment")).select_by_visible_text("every experiment")
    browser.find_element(By.ID, "filter-text").send_keys("f1-f4")
    assert len(table_rows()) == 4  # memkv f1-f4 in each of the four experiments
    screenshot = tmp_path / "report.png"
    browser.find_element(By.ID, "filter-text").clear()
    browser.execute_script("document.getElementById('filter-text').dispatchEvent(new Event('input'))")
    browser.set_window_size(1400, 1700)
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(screenshot))
    browser.set_window_size(1400, 1000)
    assert screenshot.stat().st_size > 10_000
    if os.environ.get("CB_REPORT_SCREENSHOT"):  # how docs/report-screenshot.png is made
        shutil.copy(screenshot, os.environ["CB_REPORT_SCREENSHOT"])

    # follow the scripted pair's link: the conversation, both patches, the tests; nothing an agent wrote runs
    row = next(r for r in table_rows() if r.find_elements(By.TAG_NAME, "td")[0].text == "scripted")
    row.find_element(By.LINK_TEXT, SCRIPTED_PAIR).click()
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith(SCRIPTED_PAIR)
    timeline = browser.find_element(By.ID, "timeline").text
    assert HOSTILE_MESSAGE in timeline and "message to agent2" in timeline
    assert "send_message agent2" in timeline and "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT" in timeline
    patch1 = browser.find_element(By.ID, "patch-agent1").text
    patch2 = browser.find_element(By.ID, "patch-agent2").text
    assert "def incr(" in patch1 and "self._hits = 0" in patch2 and HOSTILE_FILE in patch2
    assert "passed" in browser.find_element(By.ID, "log-feature1").text
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert browser.execute_script("return document.querySelectorAll('script, img').length") == 0
    messages = json.loads(Path(runs["work"] / "logs" / "scripted" / SCRIPTED_PAIR / "messages.json").read_text())
    assert messages[0]["body"] == HOSTILE_MESSAGE  # the page showed exactly what was sent

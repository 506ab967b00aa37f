"""The cost cap (`--max-cost`) holds under concurrency: pairs reserve their agents' cost limits
before they start, so however many workers take agents at once, the known spending never passes
the cap. A model whose price litellm does not know is refused up front.

Two external `celery -A cooperbench worker` processes (two slots each) on PostgreSQL; the model is
the local OpenAI-protocol server answering as `gpt-4o`, whose price litellm knows.
"""

import yaml

from cooperbench import api
from cooperbench.store import db

from ..conftest import Worker, run_cli
from ..fake_openai import Answer, FakeOpenAI, Hold
from .test_worker_killed import SUBMIT, _wait_for

ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "sk-test-cost-cap"}
CALL_COST = 10_000 * 2.5e-6 + 10 * 1e-5  # gpt-4o: 10,000 prompt tokens and 10 completion tokens per call


def test_the_cap_holds_with_concurrent_workers(redis_url, tmp_path, dataset_dir, postgres_url, monkeypatch):
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # the up-front price check reads litellm's own copy
    database, name, cap = postgres_url, "capped-concurrent", 0.13
    fake = None

    def two_at_work():
        return len(fake.requests) >= 2

    look = "Look.\n\n```bash\necho step\n```"
    # each agent: one command, then it submits: two calls, $0.0502 (under its cost_limit of $0.06)
    fake = FakeOpenAI(
        {
            "gpt-4o": [Hold(two_at_work, Answer(look, 10_000, 10), timeout=20) for _ in range(2)]
            + [Answer(SUBMIT, 10_000, 10) for _ in range(18)]
        }
    )
    (tmp_path / "agent.yaml").write_text(
        yaml.safe_dump({"retry_base_delay": 0.01, "cost_limit": 0.06, "model_kwargs": {"api_base": fake.base_url}})
    )
    with fake:
        workers = [Worker(redis_url, database, tmp_path / f"w{i}.log", concurrency=2, extra_env=ENV) for i in (1, 2)]
        try:
            api.run(
                name,
                agent="mini_swe_agent",
                model="openai/gpt-4o",
                setting="solo",
                repo="memkv_task",  # ten pairs for four worker slots
                dataset=str(dataset_dir),
                broker=redis_url,
                db_url=database,
                logs=str(tmp_path / "logs"),
                agent_config=str(tmp_path / "agent.yaml"),
                max_cost=cap,
                wait=False,
            )
            _wait_for(
                lambda: all(r.status != "queued" for r in db.query(database, db.PairRun, experiment=name)),
                timeout=240,
                what="every pair to end",
            )
        finally:
            for w in workers:
                w.stop()
    runs = db.query(database, db.AgentRun, experiment=name)
    ran = [r for r in runs if r.status != "Skipped"]
    skipped = [r for r in runs if r.status == "Skipped"]
    spent = sum(r.cost_usd for r in runs)
    # two agents fit under the cap with their $0.06 reservations; a third would make $0.18 possible
    assert len(runs) == 10 and len(ran) == 2 and len(skipped) == 8, [(r.id, r.status, r.error) for r in runs]
    assert all(r.status == "Submitted" for r in ran), [(r.id, r.status, r.error, r.cost_usd) for r in ran]
    assert spent <= cap and abs(spent - 4 * CALL_COST) < 1e-9, spent
    assert len(fake.requests) == 4
    assert all("cost cap ($0.13)" in r.error for r in skipped), [r.error for r in skipped]
    statuses = sorted(r["status"] for r in api.status(name, db_url=database))
    assert statuses == ["done"] * 2 + ["skipped"] * 8
    # the SQL sum the cap uses is the rows' own figures
    assert abs(sum((r.usage or {}).get("cost_usd") or 0 for r in runs) - spent) < 1e-12


def test_a_cap_with_a_model_of_unknown_price_is_refused_up_front(tmp_path, dataset_dir):
    proc = run_cli(
        "run", "-n", "unknown-price", "--dataset", str(dataset_dir), "-r", "memkv_task", "-m", "openai/no-such-price",
        "--max-cost", "1", "--db", f"sqlite:///{tmp_path / 'r.db'}", "--no-preflight",
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "does not know the price of 'openai/no-such-price'" in proc.stderr, proc.stderr

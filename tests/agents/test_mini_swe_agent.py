"""The `mini_swe_agent` driven end to end: the real agent loop, litellm over HTTP to a local
OpenAI-protocol server (tests/fake_openai.py), real sandboxes on the bundled dataset, a real
Redis mailbox, and the harness's own `run_agent` / `evaluate_pair`.
"""

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # the installed price data, no download

from cooperbench.agents.llm_actions import Outgoing, parse_send_message  # noqa: E402
from cooperbench.data.dataset import Dataset, Pair  # noqa: E402
from cooperbench.experiment import ExperimentSpec, agent_run_id  # noqa: E402
from cooperbench.grading.patchutil import files_in  # noqa: E402
from cooperbench.pair.agent_step import run_agent  # noqa: E402
from cooperbench.pair.eval_step import evaluate_pair
from cooperbench.store import db  # noqa: E402
from cooperbench.team.mailbox import Mailbox  # noqa: E402

from ..conftest import DATASET  # noqa: E402
from ..fake_openai import Answer, Fail, FakeOpenAI, Hold  # noqa: E402

SECRET = "sk-test-SECRET123"
PAIR = Pair("memkv_task", 2, (1, 3))  # their gold patches merge cleanly
SUBMIT = "All done.\n\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"
TASK = Dataset(DATASET).task(PAIR.repo, PAIR.task_id)


def bash(command: str, why: str = "Next step.") -> str:
    return f"{why}\n\n```bash\n{command}\n```"


def apply_gold(feature: int) -> str:
    patch = TASK.feature(feature).gold_patch
    return bash(
        f"cat > /tmp/p.patch <<'EOF'\n{patch}EOF\ngit apply /tmp/p.patch && git status --short",
        f"I will implement feature {feature}.",
    )


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


@pytest.fixture
def farm(tmp_path):
    """Where one test's runs go: its database, logs and agent config."""
    return {"db": f"sqlite:///{tmp_path / 'results.db'}", "logs": tmp_path / "logs", "dir": tmp_path}


def make_spec(farm, fake, *, setting="solo", model="openai/solo", messaging=True, **config) -> ExperimentSpec:
    settings = {
        "retry_base_delay": 0.01,
        "retry_max": 3,
        "command_timeout": 60,
        "message_wait_timeout": 120,
        "model_kwargs": {"api_base": fake.base_url},
        **config,
    }
    path = farm["dir"] / f"agent-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(settings))
    return ExperimentSpec(
        name=f"msa-{uuid.uuid4().hex[:8]}",
        setting=setting,
        agent="mini_swe_agent",
        model=model,
        messaging=messaging,
        dataset=str(DATASET),
        logs=str(farm["logs"]),
        agent_config=str(path),
    )


def run(farm, spec, agent_id="solo", features=PAIR.features, mailbox_url=None) -> db.AgentRun:
    run_agent(spec, PAIR, agent_id, features, mailbox_url, farm["db"])
    return db.get(farm["db"], db.AgentRun, agent_run_id(spec.name, PAIR, agent_id))


def run_pair(farm, spec, redis_url) -> dict:
    """Both agents of the coop pair at the same time (as two workers would), then its evaluation."""
    threads = [
        threading.Thread(target=run, args=(farm, spec, a, (n,), redis_url)) for a, n in (("agent1", 1), ("agent2", 3))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return evaluate_pair(spec, PAIR, redis_url, farm["db"])


def last_user(request: dict) -> str:
    return request["messages"][-1]["content"]


def _trajectory(row: db.AgentRun) -> list[dict]:
    return json.loads(Path(row.trajectory_path).read_text())["trajectory"]


def test_coop_pair_talks_applies_both_features_and_passes(farm, redis_url):
    scripts = {
        "agent1": [
            apply_gold(1),
            bash(
                "send_message --wait agent2 <<'MSG'\nI add Store.incr and Store.decr in memkv/store.py, "
                "right after delete(). Where do you work?\nMSG",
                "I tell my teammate.",
            ),
            SUBMIT,
        ],
        # agent2's model answers its first turn only once agent1 has asked
        "agent2": [
            Hold(lambda: mailbox.log(), apply_gold(3)),
            bash("send_message agent1 'I only touch my own method in memkv/store.py; no overlap.'"),
            SUBMIT,
        ],
    }
    with FakeOpenAI(scripts) as fake:
        spec = make_spec(farm, fake, setting="coop", model="openai/shared-model")
        mailbox = Mailbox(redis_url, spec.name, PAIR.key)
        record = run_pair(farm, spec, redis_url)

    runs = {a: db.get(farm["db"], db.AgentRun, agent_run_id(spec.name, PAIR, a)) for a in ("agent1", "agent2")}
    assert {a: (r.status, r.error) for a, r in runs.items()} == {
        "agent1": ("Submitted", None),
        "agent2": ("Submitted", None),
    }
    assert all((r.steps, r.messages_sent, r.messages_received) == (3, 1, 1) for r in runs.values())
    assert runs["agent1"].usage["message_steps"] == 1 and runs["agent1"].usage["message_step_share"] == 1 / 3
    system = fake.requests_for("agent1")[0]["messages"][0]["content"]
    assert "You are agent1" in system and "agent2" in system and "send_message" in system and "merged" in system
    assert last_user(fake.requests_for("agent2")[1]).startswith("Message from agent1: I add Store.incr")
    assert "Reply:\nMessage from agent2: I only touch" in last_user(fake.requests_for("agent1")[2])
    assert [(m.sender, m.recipient) for m in mailbox.log()] == [("agent1", "agent2"), ("agent2", "agent1")]
    assert (record["merge_status"], record["both_passed"], record["clean_success"]) == ("clean", True, True)
    assert record["feature_passed"] == {"1": True, "3": True}


def test_deleting_git_does_not_hide_the_change(farm):
    script = [
        bash("printf 'def hello():\\n    return \"hi\"\\n' > memkv/hello.py && echo '# agent note' >> memkv/store.py"),
        bash("rm -rf .git && ls -a"),
        SUBMIT,
    ]
    with FakeOpenAI({"solo": script}) as fake:
        row = run(farm, make_spec(farm, fake))
    assert row.status == "Submitted" and row.steps == 3
    assert sorted(files_in(row.patch)) == ["memkv/hello.py", "memkv/store.py"]
    added = [line for line in row.patch.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert added == ["+def hello():", '+    return "hi"', "+# agent note"]


def test_rate_limit_and_server_error_are_retried(farm):
    script = [Fail(429, "Rate limit reached for requests"), Fail(500, "The server had an error"), SUBMIT]
    with FakeOpenAI({"solo": script}) as fake:
        row = run(farm, make_spec(farm, fake))
    assert (row.status, row.error, row.steps) == ("Submitted", None, 1)
    assert row.usage["retries"] == 2 and len(fake.requests) == 3


def test_a_model_api_down_past_the_retries_is_the_farms_failure_not_the_agents(farm):
    outage = Fail(503, f"The upstream is overloaded (request with key {SECRET})")
    with FakeOpenAI({"solo": [bash("echo working"), outage, outage, SUBMIT]}) as fake:
        spec = make_spec(farm, fake, retry_max=1)
        summary = run_agent(spec, PAIR, "solo", PAIR.features, None, farm["db"])
        row = db.get(farm["db"], db.AgentRun, agent_run_id(spec.name, PAIR, "solo"))
        record = evaluate_pair(spec, PAIR, None, farm["db"])
        assert (summary["status"], summary["retryable"]) == ("InfraError", True)
        assert row.error.startswith("AgentInfraError: model openai/solo still failing after 1 retries: ")
        assert SECRET not in row.error and SECRET not in json.dumps(row.usage)
        assert (row.steps, row.usage["retries"]) == (1, 1)  # what the run had done before the outage is kept
        assert (record["error_kind"], record["merge_status"]) == ("infra", "missing_input")  # never scored
        again = run(farm, spec)  # the next attempt (a retry, or the next run) does it
    assert (again.status, again.steps) == ("Submitted", 1) and len(fake.requests) == 4


def test_authentication_error_fails_at_once_as_the_configurations_without_leaking_the_key(farm):
    script = [Fail(401, f"Incorrect API key provided: {SECRET}."), SUBMIT]
    with FakeOpenAI({"solo": script}) as fake:
        spec = make_spec(farm, fake)
        summary = run_agent(spec, PAIR, "solo", PAIR.features, None, farm["db"])
        row = db.get(farm["db"], db.AgentRun, agent_run_id(spec.name, PAIR, "solo"))
    # the user's setup, not the agent's failure: never scored, and not retried (only a new key helps)
    assert (row.status, row.steps, summary["retryable"]) == ("InfraError", 0, False)
    assert row.error.startswith("ModelConfigError: authentication failed for model openai/solo: ")
    assert "[REDACTED]" in row.error and SECRET not in row.error
    assert len(fake.requests) == 1


def test_unknown_model_fails_at_once(farm):
    with FakeOpenAI({"solo": [SUBMIT]}) as fake:
        row = run(farm, make_spec(farm, fake, model="openai/no-such-model"))
    assert row.status == "InfraError" and row.error.startswith("ModelConfigError: unknown model openai/no-such-model: ")
    assert len(fake.requests) == 1


def test_step_limit(farm):
    with FakeOpenAI({"solo": [bash("echo working")] * 5}) as fake:
        row = run(farm, make_spec(farm, fake, step_limit=3))
    assert (row.status, row.steps) == ("LimitsExceeded", 3)
    assert row.error.startswith("step limit reached") and len(fake.requests) == 3


def test_context_window_overflow_is_a_limit(farm):
    overflow = Fail(
        400,
        "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens. Please reduce the length of the messages.",
    )
    with FakeOpenAI({"solo": [bash("echo working"), overflow]}) as fake:
        row = run(farm, make_spec(farm, fake))
    assert (row.status, row.steps) == ("LimitsExceeded", 1)
    assert row.error.startswith("context window of model openai/solo exceeded") and len(fake.requests) == 2


def test_cost_limit_with_a_known_price(farm):
    with FakeOpenAI({"gpt-4o": [Answer(bash("echo working"), 100_000, 1_000)] * 3}) as fake:
        row = run(farm, make_spec(farm, fake, model="openai/gpt-4o", cost_limit=0.1))
    assert (row.status, row.steps) == ("LimitsExceeded", 1) and row.error.startswith("cost limit reached")
    assert row.usage["cost_known"] is True and row.usage["cost_usd"] > 0.1
    assert (row.usage["input_tokens"], row.usage["output_tokens"]) == (100_000, 1_000)


def test_token_limit_stands_in_when_the_price_is_unknown(farm):
    with FakeOpenAI({"solo": [Answer(bash("echo working"), 100, 20)] * 5}) as fake:
        row = run(farm, make_spec(farm, fake, max_tokens_total=250, cost_limit=0.000001))
    assert (row.status, row.steps) == ("LimitsExceeded", 3) and row.error.startswith("token limit reached")


def test_wall_time_limit_stops_a_long_command(farm):
    with FakeOpenAI({"solo": [bash("sleep 30"), SUBMIT]}) as fake:
        started = time.monotonic()
        row = run(farm, make_spec(farm, fake, wall_time_limit=2))
    assert row.status == "LimitsExceeded" and row.error.startswith("wall-time limit reached")
    assert time.monotonic() - started < 20
    assert "stopped after" in _trajectory(row)[-1]["content"]


def test_api_key_is_in_no_stored_artifact(farm):
    script = [
        bash(f"echo {SECRET}; env | grep -c API_KEY", f"The key might be {SECRET}."),
        Fail(401, f"Incorrect API key provided: {SECRET}."),
    ]
    with FakeOpenAI({"solo": script}) as fake:
        row = run(farm, make_spec(farm, fake))
    assert row.status == "InfraError"
    trajectory = _trajectory(row)
    assert "[REDACTED]\n0" in trajectory[-1]["content"]  # the sandbox never had the key in its environment
    assert "The key might be [REDACTED]." in trajectory[2]["content"]
    stored = [Path(farm["db"].removeprefix("sqlite:///"))] + [p for p in farm["logs"].rglob("*") if p.is_file()]
    assert len(stored) >= 3
    assert [p for p in stored if SECRET.encode() in p.read_bytes()] == []
    assert SECRET not in str(row.usage) + str(row.error)


def test_malformed_answers_get_a_reminder_and_unknown_price_is_none(farm):
    script = ["I think I should look around first.", bash("ls") + "\n" + bash("pwd"), SUBMIT]
    with FakeOpenAI({"solo": script}) as fake:
        row = run(farm, make_spec(farm, fake))
    assert (row.status, row.steps) == ("Submitted", 3)
    assert last_user(fake.requests[1]).startswith("Format error: your answer had no ```bash block")
    assert "2 ```bash blocks" in last_user(fake.requests[2])
    assert row.usage["cost_usd"] is None and row.usage["cost_known"] is False
    assert (row.usage["input_tokens"], row.usage["output_tokens"], row.usage["model"]) == (300, 60, "openai/solo")
    assert [t["usage"]["cost_usd"] for t in _trajectory(row) if t["role"] == "assistant"] == [None] * 3


def test_message_to_a_finished_teammate_gets_a_notice(farm, redis_url):
    import redis

    client, experiment = redis.Redis.from_url(redis_url), {}
    agent2_done = lambda: client.exists(f"cooperbench:{experiment['name']}:{PAIR.key}:done:agent2")
    # agent1's model answers only once agent2 has finished
    scripts = {
        "agent2": [SUBMIT],
        "agent1": [Hold(agent2_done, bash('send_message --wait agent2 "Which files do you change?"')), SUBMIT],
    }
    with FakeOpenAI(scripts) as fake:
        spec = make_spec(farm, fake, setting="coop", model="openai/shared-model")
        experiment["name"] = spec.name
        started = time.monotonic()
        second = threading.Thread(target=run, args=(farm, spec, "agent2", (3,), redis_url))
        second.start()
        row = run(farm, spec, "agent1", (1,), redis_url)
        second.join(60)
    assert row.status == "Submitted" and time.monotonic() - started < 60  # did not wait 120 s for a reply
    assert last_user(fake.requests_for("agent1")[1]) == (
        "Notice from the harness: agent2 has finished its work and will read no more messages.\n\n"
        "agent2 has already finished; your message was delivered to its log but it will not read it"
    )
    assert [m.body for m in Mailbox(redis_url, spec.name, PAIR.key).log()] == ["Which files do you change?"]


def test_a_teammate_finishing_without_a_reply_ends_the_wait_at_once(farm, redis_url):
    box = {}
    # agent2 submits, without answering, once agent1 has asked
    scripts = {
        "agent1": [bash("send_message --wait agent2 'Do you touch memkv/store.py?'"), SUBMIT],
        "agent2": [Hold(lambda: box["mailbox"].log(), SUBMIT)],
    }
    with FakeOpenAI(scripts) as fake:
        spec = make_spec(farm, fake, setting="coop", model="openai/shared-model")
        box["mailbox"] = Mailbox(redis_url, spec.name, PAIR.key)
        started = time.monotonic()
        record = run_pair(farm, spec, redis_url)
    assert time.monotonic() - started < 60  # not the 120 s agent1 was ready to wait
    assert last_user(fake.requests_for("agent1")[1]) == (
        "Message sent to agent2. No reply; instead:\n"
        "Notice from the harness: agent2 has finished its work and will read no more messages."
    )
    row = db.get(farm["db"], db.AgentRun, agent_run_id(spec.name, PAIR, "agent1"))
    assert (row.status, row.messages_sent, row.messages_received) == ("Submitted", 1, 0)
    assert record["disruption"] is None  # both ran together to their own ends


def test_without_messaging_send_message_is_an_ordinary_command(farm):
    script = [bash("send_message agent2 'hello'"), SUBMIT]
    with FakeOpenAI({"agent1": script}) as fake:
        spec = make_spec(farm, fake, setting="coop", model="openai/shared-model", messaging=False)
        row = run(farm, spec, "agent1", (1,), None)
    system = fake.requests[0]["messages"][0]["content"]
    assert "You are agent1" in system and "send_message" not in system
    assert last_user(fake.requests[1]).startswith("Exit code: 127")
    assert (row.status, row.messages_sent) == ("Submitted", 0)


def test_unknown_config_key_is_a_clear_error(farm):
    with FakeOpenAI({"solo": [SUBMIT]}) as fake:
        row = run(farm, make_spec(farm, fake, step_limt=3))
    assert row.status == "Error" and row.error.startswith("unknown agent-config key(s) step_limt (known: ")
    assert fake.requests == []


def test_send_message_forms():
    assert parse_send_message("send_message agent2 <<'MSG'\nline one\nline two\nMSG") == Outgoing(
        "agent2", "line one\nline two", False
    )
    assert parse_send_message('send_message --wait agent1 "short text"') == Outgoing("agent1", "short text", True)
    assert parse_send_message("send_message agent1 'it''s'") == Outgoing("agent1", "its", False)
    for bad in (
        "send_message agent2",
        "send_message agent2 <<'MSG'\nno end",
        "send_message a 'x' 'y'",
        "send_message agent2 <<EOF\nhi\nEOF\nls",
    ):
        with pytest.raises(ValueError, match="usage: send_message"):
            parse_send_message(bad)


def test_shared_git_remote_lets_teammates_see_each_others_work(farm, redis_url):
    import dataclasses

    scripts = {
        "agent1": [
            apply_gold(1),
            bash("git add -A && git commit -qm 'feature 1' && git push -q team HEAD:agent1 && echo pushed"),
            bash("send_message agent2 'pushed my branch agent1 to team'"),
            SUBMIT,
        ],
        "agent2": [
            bash("send_message --wait agent1 'tell me when your branch is on team'"),
            bash("git fetch -q team && git diff --stat HEAD team/agent1"),
            apply_gold(3),
            SUBMIT,
        ],
    }
    with FakeOpenAI(scripts) as fake:
        spec = dataclasses.replace(make_spec(farm, fake, setting="coop", model="openai/shared-model"), git=True)
        record = run_pair(farm, spec, redis_url)

    system = fake.requests_for("agent2")[0]["messages"][0]["content"]
    assert "remote named `team`" in system and "git push team HEAD:agent2" in system
    assert "pushed" in last_user(fake.requests_for("agent1")[2])
    assert "memkv/store.py" in last_user(fake.requests_for("agent2")[2])  # agent2 saw agent1's pushed change
    runs = {a: db.get(farm["db"], db.AgentRun, agent_run_id(spec.name, PAIR, a)) for a in ("agent1", "agent2")}
    assert all(r.status == "Submitted" for r in runs.values()), {a: r.error for a, r in runs.items()}
    # each captured patch is that agent's own change; evaluation merges those, not the remote
    assert runs["agent2"].patch.strip() and runs["agent2"].patch != runs["agent1"].patch
    assert (record["merge_status"], record["both_passed"]) == ("clean", True)


def test_without_git_there_is_no_remote_section(farm):
    with FakeOpenAI({"solo": [SUBMIT]}) as fake:
        run(farm, make_spec(farm, fake))
    assert "remote named" not in fake.requests[0]["messages"][0]["content"]


def test_a_key_copied_into_the_working_tree_is_not_in_the_stored_patch(farm):
    with FakeOpenAI({"solo": [bash(f"echo {SECRET} > leaked.txt"), SUBMIT]}) as fake:
        row = run(farm, make_spec(farm, fake))
    assert row.status == "Submitted" and "leaked.txt" in row.patch and "+[REDACTED]" in row.patch
    stored = [Path(farm["db"].removeprefix("sqlite:///"))] + [p for p in farm["logs"].rglob("*") if p.is_file()]
    assert [p for p in stored if SECRET.encode() in p.read_bytes()] == []

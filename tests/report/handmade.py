"""Hand-made experiments written straight into a results database, with answers known by construction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cooperbench.statuses import AgentStatus, ErrorKind, MergeStatus, MergeStrategy, PairStatus, PatchState
from cooperbench.store import db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def experiment(database: str, name: str, setting: str = "coop", agent: str = "mini_swe_agent") -> None:
    db.upsert(database, db.Experiment(name=name, setting=setting, agent=agent, model="openai/m"))


def pair(
    database: str,
    exp: str,
    repo: str,
    task: int,
    features: str,
    *,
    status=PairStatus.DONE,
    passed=False,
    merge=MergeStatus.CLEAN,
    strategy=MergeStrategy.NAIVE,
    error=None,
    error_kind=None,
    patch_status=None,
    messages=0,
    costs=(0.01, 0.02),
    agent_statuses=(AgentStatus.SUBMITTED, AgentStatus.SUBMITTED),
    setting="coop",
) -> str:
    key = f"{repo}/task{task}/" + "-".join(f"f{n}" for n in features.split(","))
    pid = f"{exp}|{key}"
    rows: list = [
        db.PairRun(
            id=pid,
            experiment=exp,
            repo=repo,
            task_id=task,
            features=features,
            setting=setting,
            status=status,
            merge_status=merge if status == PairStatus.DONE else None,
            merge_strategy=strategy if status == PairStatus.DONE else None,
            patch_status=patch_status or {},
            both_passed=passed,
            clean_success=passed and merge == MergeStatus.CLEAN,
            error=error,
            error_kind=error_kind,
        )
    ]
    agents = ["solo"] if setting == "solo" else ["agent1", "agent2"]
    for i, agent_id in enumerate(agents[: len(agent_statuses)]):
        cost = costs[i]
        skipped = agent_statuses[i] == AgentStatus.SKIPPED
        rows.append(
            db.AgentRun(
                id=f"{pid}|{agent_id}",
                experiment=exp,
                pair_id=pid,
                agent_id=agent_id,
                features=features.split(",")[i] if setting == "coop" else features,
                agent="mini_swe_agent",
                status=agent_statuses[i],
                patch="+x\n",
                steps=10,
                messages_sent=messages // len(agents),
                usage={}
                if skipped
                else {
                    "cost_usd": cost,
                    "cost_known": cost is not None,
                    "input_tokens": 1000,
                    "output_tokens": 100,
                    "message_steps": messages // len(agents),
                },
                started_at=T0,
                finished_at=T0 + timedelta(seconds=60 + 30 * i),
                duration=60 + 30 * i,
            )
        )
    for seq in range(1, messages + 1):
        rows.append(
            db.MessageRow(
                id=f"{pid}|{seq}",
                experiment=exp,
                pair_id=pid,
                seq=seq,
                sender=agents[seq % len(agents)],
                recipient=agents[(seq + 1) % len(agents)],
                body=f"message {seq}",
                sent_at=1.0 * seq,
            )
        )
    db.upsert(database, *rows)
    return key


def mixed(database: str, name: str = "mixed") -> None:
    """10 pairs: 6 scored (3 passed, one of them rescued by the union merge, one scored agent error),
    2 infrastructure errors, 1 skipped, 1 unfinished; one agent's cost unknown."""
    experiment(database, name)
    pair(database, name, "alpha", 1, "1,2", passed=True, messages=4)
    pair(database, name, "alpha", 1, "1,3", passed=True, merge=MergeStatus.CONFLICTS, strategy=MergeStrategy.UNION)
    pair(database, name, "alpha", 1, "2,3", merge=MergeStatus.CONFLICTS, strategy=MergeStrategy.UNION,
         error="union merge failed", error_kind=ErrorKind.AGENT, messages=2)  # fmt: skip
    pair(database, name, "beta", 2, "1,2", passed=True, costs=(0.01, None))
    pair(database, name, "beta", 2, "1,3", merge=MergeStatus.ERROR, strategy=MergeStrategy.NAIVE,
         patch_status={"agent1": PatchState.FAILED, "agent2": PatchState.APPLIED},
         error="patch from agent1 does not apply", error_kind=ErrorKind.AGENT)  # fmt: skip
    pair(database, name, "beta", 3, "1,2", agent_statuses=(AgentStatus.ERROR, AgentStatus.SUBMITTED),
         error="agent1: Error: boom", error_kind=ErrorKind.AGENT)  # fmt: skip
    pair(database, name, "beta", 3, "1,3", status=PairStatus.ERROR, error="sandbox down", error_kind=ErrorKind.INFRA,
         agent_statuses=(AgentStatus.INFRA_ERROR, AgentStatus.INFRA_ERROR), costs=(0.005, 0.0))  # fmt: skip
    pair(database, name, "gamma", 4, "1,2", status=PairStatus.ERROR, error="team never started",
         error_kind=ErrorKind.INFRA, agent_statuses=(AgentStatus.INFRA_ERROR, AgentStatus.INFRA_ERROR))  # fmt: skip
    pair(database, name, "gamma", 4, "1,3", status=PairStatus.SKIPPED, error="cost cap", error_kind=ErrorKind.BUDGET,
         agent_statuses=(AgentStatus.SKIPPED, AgentStatus.SKIPPED), costs=(None, None))  # fmt: skip
    pair(database, name, "gamma", 4, "2,3", status=PairStatus.QUEUED, agent_statuses=(), costs=())


# (coop passed, solo passed) per pair of two repositories of two tasks each; answers in test_summary.py
PAIRED = {
    ("r1", 1, "1,2"): (True, True),
    ("r1", 1, "1,3"): (False, True),
    ("r1", 2, "1,2"): (False, True),
    ("r1", 2, "1,3"): (False, True),
    ("r2", 3, "1,2"): (True, True),
    ("r2", 3, "1,3"): (True, False),
    ("r2", 4, "1,2"): (False, False),
    ("r2", 4, "1,3"): (True, True),
}


def paired(database: str) -> None:
    """`coop` and `solo` on the PAIRED pairs, plus a pair only in each and one that is an infra error in coop."""
    experiment(database, "coop")
    experiment(database, "solo", setting="solo")
    for (repo, task, features), (coop, solo) in PAIRED.items():
        pair(database, "coop", repo, task, features, passed=coop, messages=2)
        pair(
            database, "solo", repo, task, features, passed=solo, setting="solo", agent_statuses=(AgentStatus.SUBMITTED,)
        )
    pair(database, "coop", "r1", 1, "1,4", passed=True)
    pair(database, "solo", "r2", 3, "1,4", passed=True, setting="solo", agent_statuses=(AgentStatus.SUBMITTED,))
    pair(database, "coop", "r2", 4, "1,4", status=PairStatus.ERROR, error_kind=ErrorKind.INFRA, error="down")
    pair(database, "solo", "r2", 4, "1,4", passed=True, setting="solo", agent_statuses=(AgentStatus.SUBMITTED,))

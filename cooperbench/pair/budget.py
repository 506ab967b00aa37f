"""The experiment's budget: its cost cap (`--max-cost`) and its time limit (`--time-limit`).

An agent checks the budget before it starts; once it is spent, no new agent of the
experiment starts (it is recorded `Skipped`, and a later run does it).

The cost cap is kept exactly, whatever the concurrency: before an agent starts, its pair
**reserves** its agents' per-agent cost limits (the agent's own `cost_limit`) in the
experiment's budget hash in Redis (`team/keys.py: budget_key`), in one atomic script that
refuses when known spending plus what running agents have reserved plus the new
reservation would pass the cap. The first agent of a coop pair reserves for its
teammates too, so a pair starts whole or not at all. When an agent run ends, its known cost
is added to the spending and its reservation freed (after its row is written). The
spending is seeded from the database (`spent`: a SQL sum) when the hash is new (an
embedded run's fresh broker, a broker that lost its data). With no Redis the cap is
checked against the SQL sum alone (no reservations).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ..experiment import ExperimentSpec
from ..store import db
from ..team.keys import budget_key

_RESERVE = """
redis.call('hsetnx', KEYS[1], 'spent', ARGV[3])
local spent = tonumber(redis.call('hget', KEYS[1], 'spent'))
local reserved = tonumber(redis.call('hget', KEYS[1], 'reserved') or '0')
if redis.call('hexists', KEYS[1], 'r:' .. ARGV[4]) == 1 then
  return {1, tostring(spent), tostring(reserved)}
end
local limit, cap = tonumber(ARGV[2]), tonumber(ARGV[1])
local missing = {}
for i = 4, #ARGV do
  if redis.call('hexists', KEYS[1], 'r:' .. ARGV[i]) == 0 then table.insert(missing, ARGV[i]) end
end
local need = limit * #missing
if spent + reserved >= cap or spent + reserved + need > cap + 1e-12 then
  return {0, tostring(spent), tostring(reserved)}
end
for _, f in ipairs(missing) do redis.call('hset', KEYS[1], 'r:' .. f, ARGV[2]) end
redis.call('hincrbyfloat', KEYS[1], 'reserved', tostring(need))
return {1, tostring(spent), tostring(reserved + need)}
"""

_RELEASE = """
if redis.call('hexists', KEYS[1], 'spent') == 1 then
  redis.call('hincrbyfloat', KEYS[1], 'spent', ARGV[2])
end
local r = redis.call('hget', KEYS[1], 'r:' .. ARGV[1])
if r then
  redis.call('hdel', KEYS[1], 'r:' .. ARGV[1])
  redis.call('hincrbyfloat', KEYS[1], 'reserved', '-' .. r)
end
return 1
"""


def paid(usage: dict | None) -> float:
    """The known cost in USD an AgentRun's usage records: its run's and its earlier, failed attempts'."""
    usage = usage or {}
    return (usage.get("cost_usd") or 0.0) + (usage.get("earlier_attempts_cost_usd") or 0.0)


def spent(database: str, experiment: str) -> float:
    """The known cost in USD of every agent run of the experiment so far: a SQL sum of `cost_usd`
    (plus, for rows of an earlier version without that column filled, their usage)."""
    legacy = db.columns(database, db.AgentRun, ("usage",), experiment=experiment, cost_usd=None)
    return db.total(database, db.AgentRun, "cost_usd", experiment=experiment) + sum(paid(u) for (u,) in legacy)


def _cap_reached(spec: ExperimentSpec, cost: float) -> str:
    return f"the experiment's cost cap (${spec.max_cost:g}) is reached (${cost:.4f} spent)"


def budget_spent(spec: ExperimentSpec, database: str, *, check_cost: bool = True) -> str | None:
    """Why no new agent of the experiment may start (its time limit, or with `check_cost` its cost cap
    against the SQL sum, is spent), or None."""
    if spec.deadline is not None and time.time() >= spec.deadline:
        ended = datetime.fromtimestamp(spec.deadline, UTC).isoformat(timespec="seconds")
        return f"the experiment's time limit passed at {ended}"
    if check_cost and spec.max_cost is not None and (cost := spent(database, spec.name)) >= spec.max_cost:
        return _cap_reached(spec, cost)
    return None


def reserve(client, spec: ExperimentSpec, database: str, agent_run: str, team_runs: list[str], limit: float):
    """Reserve `limit` USD for this agent run and each of its teammates' (`team_runs`) not yet reserved, if
    the cap allows; None when reserved, else why not."""
    key = budget_key(spec.name)
    seed = None if client.hexists(key, "spent") else spent(database, spec.name)
    ok, cost, reserved = client.eval(
        _RESERVE,
        1,
        key,
        repr(float(spec.max_cost)),
        repr(float(limit)),
        repr(float(seed or 0.0)),
        agent_run,
        *[r for r in team_runs if r != agent_run],
    )
    if ok:
        return None
    cost, reserved = float(cost), float(reserved)
    if cost >= spec.max_cost:
        return _cap_reached(spec, cost)
    return (
        f"the experiment's cost cap (${spec.max_cost:g}) leaves too little for this pair's agents "
        f"(${limit:g} each; ${cost:.4f} spent, ${reserved:.4f} reserved by running agents)"
    )


def release(client, spec: ExperimentSpec, agent_run: str, cost: float) -> None:
    """The agent run has ended (its row written): add what it cost to the spending, free its reservation."""
    client.eval(_RELEASE, 1, budget_key(spec.name), agent_run, repr(float(cost)))

"""A pair's submission in flight: the Redis marker naming the evaluation task of its chord.

`submit` claims a pair by setting its marker (`PairKeys.submitted`, SET NX) to the id it
gives the pair's evaluation task; the agent tasks' ids follow from it (`agent_task_id`). A
second `submit`/`run` of the experiment finds the marker and sends nothing for that pair:
it waits for the chord already queued or running (so no agent starts twice, and its live
mailbox and heartbeats are left alone). `--force` replaces the marker and revokes the old
chord's tasks (terminating running ones); an evaluation whose id is no longer its pair's
marker records nothing. The evaluation removes the marker when it has recorded the pair
(compare-and-delete), `wait` when it records a failed chord; a marker whose evaluation has
a result already (a chord that failed with nobody waiting) is stale and ignored.
"""

from __future__ import annotations

import uuid

from .. import settings
from ..data.dataset import Pair
from ..team.keys import PairKeys

_DELETE_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
CHUNK = 1000


def new_id() -> str:
    return str(uuid.uuid4())


def agent_task_id(evaluation_id: str, agent_id: str) -> str:
    return f"{evaluation_id}-{agent_id}"


def read(client, experiment: str, pairs: list[Pair]) -> dict[Pair, str]:
    """pair -> evaluation task id of the pairs with a marker (one MGET per 1,000 pairs)."""
    found = {}
    for i in range(0, len(pairs), CHUNK):
        chunk = pairs[i : i + CHUNK]
        values = client.mget([PairKeys(experiment, p.key).submitted for p in chunk])
        found.update({p: v.decode() for p, v in zip(chunk, values, strict=True) if v})
    return found


def claim(client, experiment: str, ids: dict[Pair, str], *, replace: bool) -> dict[Pair, str]:
    """Set the pairs' markers to the given ids (only where none is set, unless `replace`); returns
    the pairs another submission claimed first, with their ids."""
    ttl = settings.get("result_expires")
    lost = {}
    pairs = list(ids)
    for i in range(0, len(pairs), CHUNK):
        chunk = pairs[i : i + CHUNK]
        with client.pipeline(transaction=False) as p:
            for pair in chunk:
                p.set(PairKeys(experiment, pair.key).submitted, ids[pair], nx=not replace, ex=ttl)
            won = p.execute()
        lost.update({pair: None for pair, ok in zip(chunk, won, strict=True) if not ok})
    if lost:
        lost = {p: v for p, v in read(client, experiment, list(lost)).items()}
    return lost


def release(client, experiment: str, pairs: list[Pair]) -> None:
    """Drop the markers of pairs claimed but not sent after all."""
    if pairs:
        client.delete(*[PairKeys(experiment, p.key).submitted for p in pairs])


def current(client, experiment: str, pair: Pair) -> str | None:
    value = client.get(PairKeys(experiment, pair.key).submitted)
    return value.decode() if value else None


def finish(client, experiment: str, pair: Pair, evaluation_id: str) -> None:
    """The pair's chord has ended: its marker goes, if it is still this evaluation's."""
    client.eval(_DELETE_IF, 1, PairKeys(experiment, pair.key).submitted, evaluation_id)

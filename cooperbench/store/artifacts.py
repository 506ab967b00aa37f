"""The names of the artifact store's objects: `PairPaths` owns every name of a pair's folder,
`InputKeys` every name of what travels with an experiment.

    <experiment>/<repo>/task<id>/<f1-f2>/
        <agent>.patch              the agent's captured patch (agent1, agent2, or solo)
        <agent>.trajectory.json    what the agent did, step by step
        messages.json              every message between the teammates, in order
        eval/feature<N>.log        each feature's test output on the merged tree
        result.json                the pair's result record (as `status --json` prints it)
    .inputs/
        tasks/<sha256>.tar         a task folder, as a tar of its sorted files (`data/inputs.py`)
        configs/<sha256>           an agent config file
        manifests/<sha256>.json    an experiment's inputs: its tasks' and agent config's hashes

Names are keys of the store (`store/backends`), relative and '/'-separated: the same on a local
folder and in a bucket. Nothing else spells these names: writers and readers ask these classes.
"""

from __future__ import annotations

from dataclasses import dataclass

INPUTS = ".inputs"  # experiment names may not start with "." (ExperimentSpec), so none is this folder


@dataclass(frozen=True)
class PairPaths:
    root: str  # the pair's folder, a key prefix of the store

    @classmethod
    def of(cls, experiment: str, pair_key: str) -> PairPaths:
        return cls(f"{experiment}/{pair_key}")

    def patch(self, agent_id: str) -> str:
        return f"{self.root}/{agent_id}.patch"

    def trajectory(self, agent_id: str) -> str:
        return f"{self.root}/{agent_id}.trajectory.json"

    @property
    def messages(self) -> str:
        return f"{self.root}/messages.json"

    @property
    def result(self) -> str:
        return f"{self.root}/result.json"

    @property
    def eval_dir(self) -> str:
        return f"{self.root}/eval"

    def eval_log(self, feature: int) -> str:
        return f"{self.eval_dir}/feature{feature}.log"


class InputKeys:
    """Content-addressed objects: the same content is one object, uploaded once, whoever sends it."""

    @staticmethod
    def task(sha: str) -> str:
        return f"{INPUTS}/tasks/{sha}.tar"

    @staticmethod
    def config(sha: str) -> str:
        return f"{INPUTS}/configs/{sha}"

    @staticmethod
    def manifest(sha: str) -> str:
        return f"{INPUTS}/manifests/{sha}.json"

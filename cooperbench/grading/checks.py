"""Checks of a dataset: `validate` (every feature's tests fail on the base and pass with its gold
patch) and `conflicts` (does each pair's gold patches merge cleanly?).

`conflicts` is fast: it applies patches to in-memory trees and uses `git merge-tree`,
with no working copy, sandbox or test run, in a scratch repository that borrows the
cached base's objects (nothing is written into the cache agents copy from).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data.dataset import Dataset, Pair, Task, read_task_file
from ..data.repocache import GitError, RepoCache, git
from ..errors import UserError
from ..sandbox import Environment, SandboxBackend
from ..statuses import MergeStatus
from .merge_and_test import run_in_fresh_sandbox
from .patchcheck import ensure_safe, patch_error


@dataclass
class Violation:
    task: str
    feature: int | None
    problem: str

    def __str__(self) -> str:
        return f"{self.task}" + (f"/feature{self.feature}" if self.feature is not None else "") + f": {self.problem}"


def validate(
    dataset: Dataset,
    backend: SandboxBackend,
    tasks: list[Task] | None = None,
    progress=None,
    only: dict[str, set[int]] | None = None,
    environment_of: Callable[[Task], Environment | None] | None = None,
) -> list[Violation]:
    """Every problem of the tasks (all of the dataset's by default); `only` limits a task (by key)
    to some of its features; `environment_of` gives a task's prepared environment (its tests
    then run offline in it, as the farm's evaluations do)."""
    problems: list[Violation] = []
    for task in tasks or dataset.tasks:
        try:
            task.upstream
        except UserError as exc:
            problems.append(Violation(task.key, None, str(exc)))
            continue
        if not (task.path / "run_tests.sh").is_file():
            problems.append(Violation(task.key, None, "missing run_tests.sh"))
            continue
        try:
            read_task_file(task.path, "run_tests.sh")  # one refused (a symlink out, too big) is a problem
        except UserError as exc:
            problems.append(Violation(task.key, None, str(exc)))
            continue
        if len(task.features) < 2:
            problems.append(Violation(task.key, None, f"has {len(task.features)} feature(s); a pair needs 2"))
        try:
            environment = environment_of(task) if environment_of is not None else None
        except Exception as exc:  # noqa: BLE001 - a task that cannot be prepared is a problem of its own
            problems.append(Violation(task.key, None, str(exc)))
            continue
        for feature in task.features.values():
            if only is not None and feature.number not in only.get(task.key, ()):
                continue
            try:
                problems += _check_feature(backend, task, feature, environment)
            except Exception as exc:  # noqa: BLE001 - the sandbox could not be made: a problem of the task here
                problems.append(Violation(task.key, feature.number, f"cannot prepare the repository: {exc}"))
            if progress:
                progress(1)
    return problems


def _check_feature(backend: SandboxBackend, task: Task, feature, environment: Environment | None) -> list[Violation]:
    out = []
    for name in ("feature.md", "feature.patch", "tests.patch"):
        if not (feature.path / name).is_file():
            out.append(Violation(task.key, feature.number, f"missing {name}"))
    if out:
        return out
    texts = {}
    for name in ("feature.md", "feature.patch", "tests.patch"):
        try:
            texts[name] = feature.read_text(name)
        except UserError as exc:  # refused: a symlink out of the task folder, not a file, too big
            out.append(Violation(task.key, feature.number, str(exc)))
    if out:
        return out
    for name in ("feature.patch", "tests.patch"):
        if error := patch_error(texts[name], name):
            out.append(Violation(task.key, feature.number, error))
    if out:
        return out  # never applied, not even to see the tests fail
    labels = {"pair": task.key, "agent": "validate"}
    on_base = run_in_fresh_sandbox(backend, task, feature, labels=labels, timeout=600, environment=environment)
    if on_base.passed:
        out.append(Violation(task.key, feature.number, "tests pass on the base commit (they must fail)"))
    with_gold = run_in_fresh_sandbox(
        backend, task, feature, extra_patch=texts["feature.patch"], labels=labels, timeout=600, environment=environment
    )
    if with_gold.ran_no_test:
        out.append(Violation(task.key, feature.number, f"with the gold patch, {with_gold.why_no_test}"))
    elif not with_gold.passed:
        tail = with_gold.output.strip().splitlines()[-1:] or ["no output"]
        out.append(
            Violation(
                task.key,
                feature.number,
                f"tests do not pass with the gold patch (exit {with_gold.exit_code}, "
                f"{with_gold.tests_passed} passed, {with_gold.tests_failed} failed: {tail[0][:120]})",
            )
        )
    return out


def conflicts(dataset: Dataset, pairs: list[Pair], cache: RepoCache | None = None) -> list[dict]:
    """For every pair: status clean, conflicts, or error (a gold patch that does not apply)."""
    cache = cache or RepoCache()
    results = []
    by_task: dict[tuple[str, int], list[Pair]] = {}
    for pair in pairs:
        by_task.setdefault((pair.repo, pair.task_id), []).append(pair)
    for (repo, task_id), task_pairs in by_task.items():
        task = dataset.task(repo, task_id)
        scratch = Path(tempfile.mkdtemp(prefix="cooperbench-conflicts-"))
        try:
            base_repo = cache.base(task.repo_url, task.base_commit)
            base = cache.base_sha(task.repo_url, task.base_commit)
            git("init", "--quiet", "--bare", str(scratch))
            (scratch / "objects" / "info" / "alternates").write_text(str(base_repo / ".git" / "objects") + "\n")
            if (base_repo / ".git" / "shallow").is_file():  # a base fetched without its history
                shutil.copyfile(base_repo / ".git" / "shallow", scratch / "shallow")
            commits: dict[int, str | Exception] = {}
            for n in sorted({n for p in task_pairs for n in p.features}):
                try:
                    commits[n] = _commit_patch(scratch, base, task.feature(n).gold_patch, n)
                except (GitError, UserError) as exc:
                    commits[n] = exc
            for pair in task_pairs:
                entry = {**pair.to_json(), "status": MergeStatus.CLEAN, "conflicting_files": []}
                bad = [n for n in pair.features if isinstance(commits[n], Exception)]
                if bad:
                    entry.update(status=MergeStatus.ERROR, error=f"feature {bad[0]}: {commits[bad[0]]}")
                else:
                    c1, c2 = (commits[n] for n in pair.features)
                    proc = git("merge-tree", "--write-tree", "--name-only", c1, c2, cwd=scratch, check=False)
                    if proc.returncode == 1:
                        files = proc.stdout.split("\n\n")[0].splitlines()[1:]
                        entry.update(status=MergeStatus.CONFLICTS, conflicting_files=sorted(set(files)))
                    elif proc.returncode != 0:
                        entry.update(status=MergeStatus.ERROR, error=proc.stderr.strip()[:300])
                results.append(entry)
        except (GitError, UserError) as exc:
            results += [{**p.to_json(), "status": MergeStatus.ERROR, "error": str(exc)} for p in task_pairs]
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return results


def _commit_patch(repo: Path, base: str, patch: str, number: int) -> str:
    ensure_safe(patch, "gold patch")  # PatchRejected is a UserError: the pair's status is error
    env = {"GIT_DIR": str(repo), "GIT_INDEX_FILE": str(repo / f"index-{number}")}
    git("read-tree", base, env=env)
    git("apply", "--cached", "-", env=env, input=patch)
    tree = git("write-tree", env=env).stdout.strip()
    return git("commit-tree", tree, "-p", base, "-m", f"feature {number}", env=env).stdout.strip()

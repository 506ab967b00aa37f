"""Merge-and-test: apply each agent's patch on its own branch, merge them, run every feature's tests.

All of it happens in a fresh sandbox of the task (never an agent's), so nothing an agent
left behind can leak into the result:
1. drop test-file sections from each patch (the benchmark's own tests are what count);
2. apply each patch on a branch from the base (plain, then 3-way): applied/skipped/failed;
3. merge the branches naively; if that conflicts, retry with git's union merge;
4. for each feature: run the task's test script with that feature's `tests.patch` on a
   fresh merged tree, and parse the output. A feature passes only if the script exits 0
   and the output shows at least one passed and no failed test.

The tests execute the agents' code, so after a test run the sandbox is the agents': the
harness never runs git in it again. The first feature is tested in the sandbox that
merged; every other feature in its own sandbox, so nothing one feature's run left can touch
the next: a copy of the merged sandbox taken before any test ran (`fork`, where the backend
has it: local), or a new sandbox where the harness applies the merged change to the base.
"""

from __future__ import annotations

import shlex
import uuid
from dataclasses import dataclass, field

from ..data.dataset import Feature, Task
from ..sandbox import Environment, Sandbox, SandboxBackend, SandboxError, track
from ..sandbox.images import host_runner
from ..statuses import ErrorKind, MergeStatus, MergeStrategy, PatchState
from .patchcheck import ensure_safe, failed, patch_error
from .patchutil import drop_test_files
from .testparse import parse_test_output

TEST_TIMEOUT = 1800.0


@dataclass
class FeatureOutcome:
    feature: int
    passed: bool
    exit_code: int | None
    tests_passed: int
    tests_failed: int
    framework: str
    duration: float
    output: str = field(repr=False, default="")
    timed_out: bool = False  # the test command outran its time limit and was killed

    @property
    def ran_no_test(self) -> bool:
        """No test ran, so nothing was graded: the runner failed before its tests (an install or build
        step), or it ran and found none to run (pytest's "no tests ran", go's "[no tests to run]" on
        every package, jest's "No tests found", cargo's "0 passed"): never a pass, whatever its exit."""
        ran = self.exit_code is not None and not self.timed_out
        return ran and self.tests_passed == 0 and self.tests_failed == 0

    @property
    def why_no_test(self) -> str:
        last = (self.output.strip().splitlines() or [""])[-1][:200]
        if self.exit_code == 0:
            return f"feature {self.feature}: the test runner exited 0 but ran no test ({self.framework}): {last}"
        return f"feature {self.feature}: the test runner failed before running any test (exit {self.exit_code}): {last}"


UNION_FAILED = "union merge failed"  # the error of a pair whose conflicts even the union merge left
_HARNESS_STEP_FAILED = 97  # a harness step of a combined command failed (not the agent's patch)
_APPLIES, _DOES_NOT_APPLY = "yes", "no"  # the apply command's verdict on each patch (not PatchStates)
_APPLY_ERROR_BYTES = 8192  # the end of git's words on a patch that does not apply, kept for its reason


@dataclass
class EvalOutcome:
    merge_status: MergeStatus
    merge_strategy: MergeStrategy | None  # None when nothing was merged (missing input)
    patch_status: dict[str, str]  # agent id -> PatchState
    features: list[FeatureOutcome]
    error: str | None = None
    error_kind: ErrorKind | None = None

    @property
    def all_passed(self) -> bool:
        return bool(self.features) and all(f.passed for f in self.features)

    @property
    def both_passed(self) -> bool:
        return self.merge_status in (MergeStatus.CLEAN, MergeStatus.CONFLICTS) and self.all_passed

    @property
    def clean_success(self) -> bool:
        return self.merge_status == MergeStatus.CLEAN and self.merge_strategy == MergeStrategy.NAIVE and self.all_passed


def _sh(sandbox: Sandbox, script: str, timeout: float = 300) -> tuple[int, str]:
    result = sandbox.exec(script, timeout=timeout, confined=False)
    return result.exit_code, result.output


def _must(sandbox: Sandbox, script: str) -> str:
    code, out = _sh(sandbox, script)
    if code != 0:
        raise SandboxError(f"harness command failed ({script.split('&&')[0].strip()[:60]}): {out.strip()[-300:]}")
    return out


def apply_on_branch(sandbox: Sandbox, name: str, patch: str) -> str:
    """Apply `patch` on branch cb-<name> from the base: 'applied', 'skipped' (empty) or 'failed'.

    A 'failed' status is a `patchcheck.PatchStatus` (a str) whose `.reason` says why: a patch
    refused by `patchcheck.check_patch` (never written), or git's own error."""
    return apply_branches(sandbox, {name: patch})[0][name]


def apply_branches(sandbox: Sandbox, patches: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """Apply each patch (name -> patch, in order) on its branch cb-<name> from cb-base (made at HEAD
    when it does not exist yet), all in one harness command: (name -> status as `apply_on_branch`,
    the branch HEAD is on after it, None when no patch was tried)."""
    status: dict[str, str] = {}
    mark = f"[cooperbench {uuid.uuid4().hex}]"  # an agent's patch cannot print it in git's messages
    # cb-base at HEAD, unless it is there already (one git process in a fresh sandbox)
    base = "git branch cb-base 2>/dev/null || git rev-parse -q --verify cb-base >/dev/null"
    lines = [f"{base} || exit {_HARNESS_STEP_FAILED}"]
    tried = []
    for name, patch in patches.items():
        if not patch.strip():
            status[name] = PatchState.SKIPPED
            continue
        rejected = patch_error(patch, f"patch from {name}")
        if rejected:  # never written into the sandbox; the status carries the reason
            status[name] = failed(rejected)
            continue
        path = shlex.quote(f"{sandbox.files_dir}/{name}.patch")
        log = shlex.quote(f"{sandbox.files_dir}/{name}.apply.log")
        sandbox.write_file(f"{sandbox.files_dir}/{name}.patch", patch.encode("utf-8", "surrogateescape"))
        tried.append(name)
        # the branch (a harness failure), the patch (the agent's), the commit (a harness failure); git's
        # words on a patch that does not apply are cut to their end, so no patch can push the verdicts
        # out of the command's (bounded) output
        lines.append(
            f"git checkout -q -B cb-{name} cb-base || exit {_HARNESS_STEP_FAILED}\n"
            f"if {{ git apply --index {path} || git apply --3way {path}; }} > {log} 2>&1; then\n"
            f"  git commit -q --no-verify --allow-empty -m {shlex.quote(name)} || exit {_HARNESS_STEP_FAILED}\n"
            f"  echo '{mark} {_APPLIES}'\n"
            f"else\n"
            f"  tail -c {_APPLY_ERROR_BYTES} {log}; echo; echo '{mark} {_DOES_NOT_APPLY}'\n"
            f"  git reset -q --hard && git checkout -q cb-base || exit {_HARNESS_STEP_FAILED}\n"
            f"fi"
        )
    if not tried:  # the base branch still, for the merge of nothing
        _must(sandbox, lines[0])
        return status, None
    code, out = _sh(sandbox, "\n".join(lines))
    if code == _HARNESS_STEP_FAILED:
        raise SandboxError(f"harness command failed (applying the patches): {out.strip()[-300:]}")
    sections = out.split(f"{mark} ")  # each patch's git output, then its verdict's word
    verdicts = [section.partition("\n")[0] for section in sections[1:]]
    if code != 0 or len(verdicts) != len(tried):
        raise SandboxError(f"harness command failed (applying the patches, exit {code}): {out.strip()[-300:]}")
    for name, verdict, section in zip(tried, verdicts, sections[: len(tried)], strict=True):
        if verdict == _APPLIES:  # a patch's own output is the section before its verdict
            status[name] = PatchState.APPLIED
            continue
        errors = [line for line in section.splitlines() if line.startswith("error:")]
        errors = errors or section.strip().splitlines()[-1:]
        status[name] = failed(f"patch from {name} does not apply: {(errors or ['git apply failed'])[-1][:300]}")
    head = f"cb-{tried[-1]}" if status[tried[-1]] == PatchState.APPLIED else "cb-base"
    return {name: status[name] for name in patches}, head


def merge_branches(sandbox: Sandbox, branches: list[str], head: str | None = None) -> tuple[str, str | None, bool]:
    """Merge the applied branches into HEAD: (merge status, strategy, whether a merged tree exists).

    HEAD is then the merged tree: branch cb-merged, or, when `head` names the branch HEAD is on and
    it is the only one to merge, that branch itself (nothing to do)."""
    if not (len(branches) == 1 and head == f"cb-{branches[0]}"):
        _must(sandbox, f"git checkout -q -B cb-merged {'cb-' + branches[0] if branches else 'cb-base'}")
    status, strategy = MergeStatus.CLEAN, MergeStrategy.NAIVE
    attributes = shlex.quote(f"{sandbox.repo_dir}/.git/info/attributes")
    for other in branches[1:]:
        code, _ = _sh(sandbox, f"git merge -q --no-edit --no-verify cb-{other}")
        if code == 0:
            continue
        _sh(sandbox, "git merge --abort")
        status, strategy = MergeStatus.CONFLICTS, MergeStrategy.UNION
        code, out = _sh(
            sandbox,
            f"mkdir -p $(dirname {attributes}) && echo '* merge=union' > {attributes} && "
            f"git merge -q --no-edit --no-verify cb-{other}",
        )
        _sh(sandbox, f"rm -f {attributes}")
        if code != 0:
            _sh(sandbox, "git merge --abort")
            return MergeStatus.CONFLICTS, MergeStrategy.UNION, False
    return status, strategy, True


def run_feature_tests(
    sandbox: Sandbox,
    task: Task,
    feature: Feature,
    *,
    extra_patch: str | None = None,
    timeout: float = TEST_TIMEOUT,
) -> FeatureOutcome:
    """Run the task's test script for `feature` (optionally with a feature patch) on the working copy.

    The sandbox must be fresh (no confined command has run in it): the run leaves it the agents'."""
    files = sandbox.files_dir
    sandbox.write_file(f"{files}/tests{feature.number}.patch", feature.tests_patch.encode("utf-8", "surrogateescape"))
    args = [f"{files}/tests{feature.number}.patch"]
    if extra_patch is not None:
        sandbox.write_file(f"{files}/feature{feature.number}.patch", extra_patch.encode("utf-8", "surrogateescape"))
        args.append(f"{files}/feature{feature.number}.patch")
    command = test_command(sandbox, task, args)
    result = sandbox.exec(command, timeout=timeout, confined=True)
    counts = parse_test_output(result.output)
    output = result.output + ("\n[cooperbench] test command timed out\n" if result.timed_out else "")
    passed = not result.timed_out and result.exit_code == 0 and counts.passed >= 1 and counts.failed == 0
    return FeatureOutcome(
        feature.number,
        passed,
        result.exit_code,
        counts.passed,
        counts.failed,
        counts.framework,
        result.duration,
        output,
        result.timed_out,
    )


def run_in_fresh_sandbox(
    backend: SandboxBackend,
    task: Task,
    feature: Feature,
    *,
    change: str = "",
    extra_patch: str | None = None,
    labels: dict[str, str] | None = None,
    timeout: float = TEST_TIMEOUT,
    environment: Environment | None = None,
) -> FeatureOutcome:
    """Test `feature` in a new sandbox of the task, where the harness first commits `change` on the base."""
    extra = {"environment": environment} if environment is not None else {}
    sandbox = track(backend.create(task, labels={**(labels or {}), "role": "eval"}, **extra))
    try:
        if change.strip():
            sandbox.write_file(f"{sandbox.files_dir}/change.patch", change.encode("utf-8", "surrogateescape"))
            path = shlex.quote(f"{sandbox.files_dir}/change.patch")
            commit = "git commit -q --no-verify -m change"
            _must(sandbox, f"git update-index -q --refresh; git apply --index {path} && {commit}")
        return run_feature_tests(sandbox, task, feature, extra_patch=extra_patch, timeout=timeout)
    finally:
        sandbox.close()


def _copies(sandbox: Sandbox, count: int) -> list[Sandbox]:
    """`count` sandboxes holding the merged tree, forked before any test ran in `sandbox`, where
    the backend can (a local copy of the folder); else none, and each feature after the first is
    tested in a fresh sandbox that applies the merged change."""
    fork = getattr(sandbox, "fork", None)
    copies: list[Sandbox] = []
    if fork is None:
        return copies
    try:
        for _ in range(count):
            copies.append(track(fork()))
    except BaseException:
        for copy in copies:
            copy.close()
        raise
    return copies


def merged_change(sandbox: Sandbox) -> str:
    """The merged tree's change against the base, as a binary-safe diff (read before any test ran)."""
    out = f"{sandbox.files_dir}/merged.patch"
    _must(sandbox, f"git diff --binary --no-color --no-ext-diff cb-base HEAD > {shlex.quote(out)}")
    return sandbox.read_file(out).decode("utf-8", "surrogateescape")


def test_command(sandbox: Sandbox, task: Task, patch_paths: list[str]) -> str:
    """The command that runs the task's runner in the sandbox on these patches (test patch first)."""
    custom = getattr(sandbox, "test_command", None)  # backends that run the image's runner.sh
    if custom is not None:
        return custom(task, patch_paths)
    return host_runner(sandbox, task, patch_paths, f"{task.key} has no run_tests.sh")


def merge_and_test(
    task: Task,
    features: list[int],
    patches: dict[str, str | None],
    backend: SandboxBackend,
    *,
    labels: dict[str, str] | None = None,
    test_timeout: float = TEST_TIMEOUT,
    environment: Environment | None = None,
) -> EvalOutcome:
    """Merge the agents' patches (agent id -> patch, None if missing) and test every feature.

    `environment` is the task's prepared environment (`cooperbench.environments`), if it has one.
    A feature whose runner failed before running any test makes the pair an `evaluation` error
    (not graded, never scored) unless the agents' patches already failed it."""
    missing = sorted(agent for agent, patch in patches.items() if patch is None)
    if missing:
        return EvalOutcome(
            MergeStatus.MISSING_INPUT,
            None,
            {a: PatchState.MISSING for a in missing},
            [],
            f"no patch from {', '.join(missing)}",
            ErrorKind.INFRA,
        )
    for n in features:  # the benchmark's own tests patches: a malicious one is bad input, never applied
        ensure_safe(task.feature(n).tests_patch, f"{task.key} feature{n}/tests.patch")
    extra = {"environment": environment} if environment is not None else {}
    sandbox = track(backend.create(task, labels={**(labels or {}), "role": "eval"}, **extra))
    try:
        status_of, head = apply_branches(sandbox, {agent: drop_test_files(patches[agent]) for agent in sorted(patches)})
        applied = [a for a in sorted(patches) if status_of[a] == PatchState.APPLIED]
        merge_status, strategy, merged = merge_branches(sandbox, applied, head)
        error = error_kind = None
        broken = [a for a, s in status_of.items() if s == PatchState.FAILED]
        if broken:
            reasons = [getattr(status_of[a], "reason", None) or f"patch from {a} does not apply" for a in broken]
            merge_status, error, error_kind = MergeStatus.ERROR, "; ".join(reasons), ErrorKind.AGENT
        if not merged:
            return EvalOutcome(
                merge_status,
                strategy,
                status_of,
                [FeatureOutcome(n, False, None, 0, 0, "none", 0.0, "merge failed") for n in features],
                UNION_FAILED,
                ErrorKind.AGENT,
            )
        copies = _copies(sandbox, len(features) - 1)
        try:
            change = merged_change(sandbox) if len(features) > 1 and not copies else ""
            results = [run_feature_tests(sandbox, task, task.feature(features[0]), timeout=test_timeout)]
            if copies:
                results += [
                    run_feature_tests(copy, task, task.feature(n), timeout=test_timeout)
                    for copy, n in zip(copies, features[1:], strict=True)
                ]
            else:
                results += [
                    run_in_fresh_sandbox(
                        backend,
                        task,
                        task.feature(n),
                        change=change,
                        labels=labels,
                        timeout=test_timeout,
                        environment=environment,
                    )
                    for n in features[1:]
                ]
        finally:
            for copy in copies:
                copy.close()
        ungraded = [r for r in results if r.ran_no_test]
        if ungraded and error_kind is None:
            error_kind = ErrorKind.EVALUATION
            error = "; ".join(r.why_no_test for r in ungraded)
        return EvalOutcome(merge_status, strategy, status_of, results, error, error_kind)
    finally:
        sandbox.close()

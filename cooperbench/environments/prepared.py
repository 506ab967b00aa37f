"""Task environments prepared once per machine, then used read-only and offline by every sandbox.

For a task whose runner installs its dependencies at every run (see `toolchains`), the
environment is a folder of package-manager caches under the cache's `environments/`,
keyed by the content of every file of the task, so a changed task is prepared again:

    <cache>/environments/<backend>/<repo>/task<id>-<key>/
        caches/<toolchain>/    what the runs downloaded (uv's cache, npm's, Go's modules, cargo's home)
        state.json             ready or failed (and why), when, how long, its size

Preparing runs no agent-written code and applies no gold patch with network: in a sandbox of
the task with network, it runs the task's own runner on the warm patch (`warm.py`: a marker
file, no gold, no hidden test), so the caches fill with what the runner installs; then,
offline, the gold patch of every feature, each of which must pass as it does with network
(a feature that fails is tried once more). A task that cannot be prepared here (a blocker in
its runner, a missing toolchain, a gold run that fails offline, e.g. one that needs a package
the base does not) is recorded as failed with the cause, and its pairs become infrastructure
errors naming it; it is not tried again on this machine until it changes or
`cooperbench env prepare --force`. A task whose runner needs nothing has nothing to prepare.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import settings
from ..data.dataset import Task, read_task_file, read_task_text
from ..data.repocache import GitError, RepoCache, _locked
from ..errors import UserError
from ..grading.merge_and_test import run_in_fresh_sandbox, test_command
from ..sandbox import Environment, ExecResult, SandboxBackend, get_backend, track
from ..statuses import EnvironmentState
from . import in_image, provision, toolchains, versions
from .provision import Provided, ToolchainUnavailable
from .warm import WARM_PATCH, WARM_PATCH_NAME

log = logging.getLogger(__name__)
RUNNER = "run_tests.sh"
READY, FAILED, NOTHING = EnvironmentState.READY, EnvironmentState.FAILED, EnvironmentState.NOTHING
PREPARE_TIMEOUT = 1800.0
SUPPORTED_BACKENDS = ("local", "docker")
IN_IMAGE_BACKENDS = ("docker",)  # the environment is a committed image (see `in_image`), not host caches
IMAGE_RUNNER = "runner.sh"  # the image's own runner, which container backends run


class EnvironmentUnavailable(RuntimeError):
    """The task's environment cannot be had on this machine: its pairs are infrastructure errors, not retried."""


@dataclass
class EnvState:
    task: str  # repo/task<id>
    backend: str
    key: str
    state: str  # ready, failed, nothing to prepare
    cause: str | None = None
    toolchains: list[str] | None = None
    prepared_at: float | None = None
    seconds: float | None = None
    size_bytes: int | None = None
    path: str | None = None
    image: str | None = None  # container backends: the prepared image
    versions: dict[str, str] | None = None  # the provided toolchains' versions, for `env list`
    provided: list[dict] | None = None  # the toolchains the farm provides it (`provision.Provided`)


_keys: dict[Path, tuple[tuple, str]] = {}  # task folder -> (what its files looked like, their key)


def task_key(task: Task) -> str:
    """A hash of every file of the task folder (names and contents): a changed task is prepared anew.

    Hashed once per process while the files stay as they were (same names, sizes, modification
    times and inodes): every agent and evaluation step of the task asks for it."""
    files = sorted(p for p in task.path.rglob("*") if p.is_file() or p.is_symlink())
    try:
        seen = tuple((p, (i := p.lstat()).st_size, i.st_mtime_ns, i.st_ino) for p in files)
    except OSError:  # a file went away meanwhile: hashed below, which says so in one line
        seen = ()
    cached = _keys.get(task.path)
    if cached is not None and cached[0] == seen:
        return cached[1]
    digest = hashlib.sha256()
    for path in files:
        rel = path.relative_to(task.path).as_posix()
        digest.update(rel.encode() + b"\0" + read_task_file(task.path, rel) + b"\0")
    key = digest.hexdigest()[:16]
    if seen:
        _keys[task.path] = (seen, key)
    return key


def root(backend: str) -> Path:
    return settings.cache_dir() / "environments" / backend


def folder(task: Task, backend: str, key: str | None = None) -> Path:
    return root(backend) / task.repo / f"task{task.task_id}-{key or task_key(task)}"


def _variables(needs: toolchains.Needs, offline: bool) -> dict[str, str]:
    variables: dict[str, str] = {} if offline else toolchains.network_variables()
    for t in needs.toolchains:
        variables.update(t.variables)
        if offline:
            variables.update(t.offline)
    return variables


def environment(
    task: Task, path: Path, needs: toolchains.Needs, *, preparing: bool = False, provided: list[Provided] = ()
) -> Environment:
    """The `sandbox.Environment` of a prepared task: its caches and variables (offline unless preparing),
    and the toolchains the farm provides it, first on PATH."""
    return Environment(
        caches={t.cache: str(path / "caches" / t.cache) for t in needs.toolchains},
        variables=_variables(needs, offline=not preparing),
        path=tuple(p.bin for p in provided),
        preparing=preparing,
        tools=tuple(p.home for p in provided),
    )


def provide_toolchains(task: Task, needs: toolchains.Needs) -> list[Provided]:
    """Install (once per machine and version) the toolchains the task's runner needs, at the versions
    its files declare; `ToolchainUnavailable` names the one that cannot be had."""
    tools = toolchains.provided_tools(needs, read_task_text(task.path, RUNNER))
    if not tools:
        return []
    base = RepoCache().base(task.repo_url, task.base_commit)
    provided: list[Provided] = []
    for tool in tools:
        need = versions.DECLARED[tool](task, base)
        node = next((p for p in provided if p.tool == "node"), None)
        provided.append(provision.provide(need, node=node))
    return provided


def for_agent(task: Task, env: Environment) -> tuple[Environment, str | None]:
    """The environment of an agent's sandbox, and the harness command that sets it up.

    As in the published images, the agent finds the project and its test tools installed:
    for a uv task, a virtual environment of the sandbox's own with the working copy
    installed editable and the runner's test tools, first on PATH, so `python -m pytest`
    runs the repository's tests offline.
    """
    if "uv" not in env.caches:
        return env, None
    tools = " ".join(toolchains.agent_tools(read_task_text(task.path, RUNNER)))
    setup = (
        'uv venv -q "$VIRTUAL_ENV" && cd "$REPO" && '
        "{ if [ -f uv.lock ]; then uv sync -q --active --all-extras || true; fi; } && "
        "{ uv pip install -q -e '.[test]' 2>/dev/null || uv pip install -q -e . || true; }"
        + (f" && {{ uv pip install -q {tools} || true; }}" if tools else "")
    )
    variables = {**env.variables, "VIRTUAL_ENV": "{sandbox}/venv"}
    return Environment(env.caches, variables, ("{sandbox}/venv/bin", *env.path), env.preparing, tools=env.tools), setup


def read_state(path: Path) -> EnvState | None:
    try:
        return EnvState(**json.loads((path / "state.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _write_state(path: Path, state: EnvState) -> EnvState:
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / "state.json.tmp"
    tmp.write_text(json.dumps(asdict(state), indent=2))
    tmp.replace(path / "state.json")
    return state


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def runner_of(task: Task, backend: str) -> str:
    """The runner script the backend runs: the image's `runner.sh` in a container, else `run_tests.sh`."""
    if backend in IN_IMAGE_BACKENDS and (task.path / IMAGE_RUNNER).is_file():
        return IMAGE_RUNNER
    return RUNNER


def needs_of(task: Task, backend: str = "local") -> toolchains.Needs:
    """What the task's runner needs; nothing when it has none or it cannot be read (a runner that is
    refused, e.g. a symlink out of its task, is the evaluation's to report, as bad input)."""
    try:
        return toolchains.needs(
            read_task_text(task.path, runner_of(task, backend)), in_image=backend in IN_IMAGE_BACKENDS
        )
    except UserError:
        return toolchains.Needs()


def ensure(task: Task, backend: str, *, force: bool = False, say: Callable[[str], None] | None = None):
    """The task's environment on this machine, prepared first if it is missing (once, under a lock).

    Returns a `sandbox.Environment`, or None when the task needs none; raises
    `EnvironmentUnavailable` (naming the task and the cause) when it cannot be had here.
    """
    needs = needs_of(task, backend)
    if not needs.toolchains and not needs.blockers:
        return None
    state = prepare(task, backend, force=force, say=say, needs=needs)
    if state.state != READY:
        raise EnvironmentUnavailable(f"the environment of {task.key} cannot be prepared here: {state.cause}")
    if state.image:
        return in_image.environment(state.image, needs)
    return environment(task, Path(state.path), needs, provided=[Provided(**p) for p in state.provided or []])


def prepare(
    task: Task,
    backend: str,
    *,
    force: bool = False,
    say: Callable[[str], None] | None = None,
    needs: toolchains.Needs | None = None,
) -> EnvState:
    """Prepare the task's environment (if not ready, or `force`) and return its state; `needs` is
    what its runner needs, when the caller has already read it."""
    needs = needs if needs is not None else needs_of(task, backend)
    key = task_key(task)
    path = folder(task, backend, key)
    base = EnvState(task.key, backend, key, READY, toolchains=[t.name for t in needs.toolchains], path=str(path))
    if not needs.toolchains and not needs.blockers:
        return EnvState(**{**asdict(base), "state": NOTHING})
    if backend not in SUPPORTED_BACKENDS:  # said, never recorded: a later version may well prepare it
        cause = f"task environments are prepared for the {', '.join(SUPPORTED_BACKENDS)} backend only so far"
        return EnvState(**{**asdict(base), "state": FAILED, "cause": cause})
    state = read_state(path)
    if state is not None and not force and _still_there(state):
        return state
    with _locked(path):
        state = read_state(path)
        if state is not None and not force and _still_there(state):
            return state  # another process prepared it while this one waited
        started = time.monotonic()
        size = 0
        if needs.problems:
            cause = "; ".join(needs.problems)
        else:
            (say or log.warning)(f"preparing the environment of {task.key} on this machine (first use)")
            shutil.rmtree(path / "caches", ignore_errors=True)
            sandboxes = get_backend(backend, hide=[task.path.parent.parent], trusted=True)  # the task's own runner
            if backend in IN_IMAGE_BACKENDS:
                cause, image, size = _prepare_in_image(task, key, needs, sandboxes)
                base.image = image
            else:
                try:  # an upstream that cannot serve the base, a toolchain that cannot be had: the task's cause
                    provided = provide_toolchains(task, needs)
                    base.provided = [asdict(p) for p in provided]
                    base.versions = {p.tool: p.version for p in provided}
                    cause = _prepare(task, path, needs, sandboxes, provided)
                except (ToolchainUnavailable, UserError, GitError) as exc:
                    cause = str(exc)
                size = _size(path / "caches") if cause is None and (path / "caches").exists() else 0
        if cause is not None:
            shutil.rmtree(path / "caches", ignore_errors=True)
            size = 0
        return _write_state(
            path,
            EnvState(
                **{
                    **asdict(base),
                    "state": READY if cause is None else FAILED,
                    "cause": cause,
                    "prepared_at": time.time(),
                    "seconds": round(time.monotonic() - started, 2),
                    "size_bytes": size,
                }
            ),
        )


def _gold_run(backend: SandboxBackend, task: Task, env: Environment, numbers: list[int]) -> dict[int, str | None]:
    """Run each feature's gold patch with its tests, each in a fresh sandbox: feature -> None (passed) or why not."""
    outcome = {}
    for n in numbers:
        feature = task.feature(n)
        run = run_in_fresh_sandbox(
            backend,
            task,
            feature,
            extra_patch=feature.gold_patch,
            labels={"agent": "prepare", "role": "prepare"},
            timeout=PREPARE_TIMEOUT,
            environment=env,
        )
        tail = run.output.strip()[-400:]
        if run.passed:
            outcome[n] = None
        elif run.ran_no_test:
            outcome[n] = f"{run.why_no_test}: {tail}"
        else:
            outcome[n] = f"exit {run.exit_code}, {run.tests_passed} passed, {run.tests_failed} failed: {tail}"
    return outcome


def _prepare(
    task: Task, path: Path, needs: toolchains.Needs, backend: SandboxBackend, provided: list[Provided]
) -> str | None:
    """Fill the caches with network (the warm patch, no gold), then check every feature's gold
    offline; the cause of a failure or None."""
    warm = _warm_run(backend, task, environment(task, path, needs, preparing=True, provided=provided))
    offline = environment(task, path, needs, provided=provided)
    failing = _failing_offline(backend, task, offline, sorted(task.features))
    if not failing:
        return None
    n, why = sorted(failing.items())[0]
    cause = f"the gold patch of feature {n} fails offline: {why}"
    if warm.exit_code != 0:  # its tests may just need a patch; said, since it may be why
        cause += f" (the warm run with network exited {warm.exit_code}: {warm.output.strip()[-300:]})"
    return cause


def _warm_run(backend: SandboxBackend, task: Task, env: Environment) -> ExecResult:
    """The task's runner, once, with network, on the warm patch: its caches fill with what it installs."""
    sandbox = track(backend.create(task, labels={"agent": "prepare", "role": "prepare"}, environment=env))
    try:
        patch = f"{sandbox.files_dir}/{WARM_PATCH_NAME}"
        sandbox.write_file(patch, WARM_PATCH.encode())
        return sandbox.exec(test_command(sandbox, task, [patch]), timeout=PREPARE_TIMEOUT)
    finally:
        sandbox.close()


def _failing_offline(backend: SandboxBackend, task: Task, offline: Environment, numbers: list[int]) -> dict[int, str]:
    """The features whose gold fails offline, and why; each that fails is tried once more (a flaky test)."""
    results = _gold_run(backend, task, offline, numbers)
    failing = [n for n, why in results.items() if why is not None]
    if failing:
        results = _gold_run(backend, task, offline, failing)
    return {n: why for n, why in results.items() if why is not None}


def _still_there(state: EnvState) -> bool:
    """A recorded environment is still usable: one whose image or toolchain was deleted since (an image
    prune, a cleaned cache) is prepared again, not handed to sandboxes that could not start."""
    if state.state != READY:
        return True
    if not all(Path(p["home"]).is_dir() for p in state.provided or []):
        return False  # a toolchain removed since (its folder cleaned away): installed again
    if not state.image:
        return True
    return get_backend(state.backend).has_image(state.image)


def _prepare_in_image(task: Task, key: str, needs: toolchains.Needs, backend) -> tuple[str | None, str | None, int]:
    """Warm the task's image with network and commit it (see `in_image`), then check every
    feature's gold offline in it: (the cause of a failure or None, the image, its size).
    The warm run applies no gold patch and no hidden test: nothing an agent must not see can
    end up in the image every sandbox of the task starts from."""
    from ..sandbox import SandboxError
    from ..sandbox.dockerfile import BUILD_DIR, ca_bundle
    from ..sandbox.images import FILES_DIR, REPO_DIR, host_runner_command, runner_command

    backend.client  # the engine answers, else SandboxError: an outage is raised, never recorded as the task's
    try:
        source = backend.image_for(task)
    except (SandboxError, UserError) as exc:
        return f"the task's image cannot be made: {exc}", None, 0
    files = {f"{FILES_DIR}/{WARM_PATCH_NAME}": WARM_PATCH.encode()}
    if runner_of(task, backend.name) == IMAGE_RUNNER:
        runner = runner_command([WARM_PATCH_NAME])
    else:
        files[f"{FILES_DIR}/run_tests.sh"] = read_task_file(task.path, RUNNER)
        runner = host_runner_command(FILES_DIR, REPO_DIR, [f"{FILES_DIR}/{WARM_PATCH_NAME}"])
    ca = ca_bundle()
    if ca:
        files[f"{BUILD_DIR}/ca.pem"] = ca
    script = in_image.prepare_script(runner, ca=bool(ca), pip=any(t.name == "pip" for t in needs.toolchains))
    name = source.rpartition(":")[0].replace("cooperbench-sandbox-", "cooperbench-env-")
    tag = f"{name}:{key}"
    backend.remove_image(tag)  # a new preparation replaces an old one (one in use is raised, not recorded)
    try:
        backend.prepare_image(source, tag, files=files, script=script, timeout=PREPARE_TIMEOUT)
    except SandboxError as exc:
        return f"the warm run with network failed: {exc}", None, 0
    failing = _failing_offline(backend, task, in_image.environment(tag, needs), sorted(task.features))
    if failing:
        n, why = sorted(failing.items())[0]
        return f"the gold patch of feature {n} fails offline: {why}", tag, 0
    return None, tag, backend.image_size(tag)


def listing(backend: str | None = None) -> list[EnvState]:
    """Every environment of this machine, as recorded (newest task versions and old ones alike)."""
    states = []
    for state_file in sorted(settings.cache_dir().glob("environments/*/*/*/state.json")):
        state = read_state(state_file.parent)
        if state is not None and (backend is None or state.backend == backend):
            state.path = str(state_file.parent)
            states.append(state)
    return states


def remove(states: list[EnvState]) -> tuple[int, list[str]]:
    """Delete these environments from this machine (an environment's image too): how many, and why
    the others stay (an image that running sandboxes use, an engine that does not answer)."""
    removed, kept = 0, []
    for state in states:
        with _locked(Path(state.path)):
            if state.image:
                try:
                    get_backend(state.backend).remove_image(state.image)
                except Exception as exc:  # kept whole, record and image, to be removed later
                    kept.append(f"{state.task} ({state.backend}) kept: {exc}")
                    continue
            shutil.rmtree(state.path, ignore_errors=True)
            removed += 1
    return removed, kept

"""Task environments for container backends: the task's image, warmed once with network, committed.

A published image already holds the project and its test tools (its Dockerfile installs
them), but its `runner.sh` installs again at every run (`pip install -e ".[test]"`), and pip
then needs the package index even for what is installed: an editable install builds in an
isolated environment that downloads the build backend (`flit_core`, `setuptools`). Preparing,
in a container of the sanitized task image **with network**, running no agent-written code:

1. the project's build requirements (`[build-system] requires` of its pyproject.toml, else
   setuptools and wheel) are saved as wheels in `WHEELHOUSE`;
2. the image's own runner runs once, with network, as the test patch a harmless patch that
   only adds a marker file (`warm.py`): no gold patch and no hidden test is ever applied
   there, so none can be left in the image (a non-editable install, a stray `.pyc`), while
   whatever the runner installs or caches (pip, uv, npm, Go, cargo, in their default places)
   is. Its exit code is not asked for (its tests may need a patch); the repository must be
   left as it was, on the base commit, with no file added or changed, ignored ones included;

then the container is committed as the environment's image. Sandboxes of that image run
with no network and the toolchains' offline switches: `PIP_NO_INDEX=1` with
`PIP_FIND_LINKS=WHEELHOUSE`, `UV_OFFLINE=1`, npm's offline cache, `GOPROXY=off`,
`CARGO_NET_OFFLINE`. `prepared.py` then checks every feature's gold offline, as for `local`.
"""

from __future__ import annotations

from ..sandbox import Environment
from ..sandbox.dockerfile import BUILD_DIR, CA_VARIABLES
from ..sandbox.images import FILES_DIR, REPO_DIR
from . import toolchains
from .toolchains import WHEELHOUSE

# pyproject's build requirements, one a line (setuptools and wheel for a project without any)
_BUILD_REQUIRES = """
import pathlib
text = pathlib.Path("pyproject.toml").read_text() if pathlib.Path("pyproject.toml").is_file() else ""
try:
    import tomllib
    requires = tomllib.loads(text).get("build-system", {}).get("requires") if text else None
except Exception:
    requires = None
print("\\n".join(requires or ["setuptools>=40.8.0", "wheel"]))
"""


def offline_variables(needs: toolchains.Needs) -> dict[str, str]:
    """The switches that keep the image's toolchains offline; their caches stay where the image has them."""
    variables: dict[str, str] = {}
    for t in needs.toolchains:
        variables.update(t.offline)
    return variables


def environment(image: str, needs: toolchains.Needs) -> Environment:
    return Environment(caches={}, variables=offline_variables(needs), image=image)


def prepare_script(runner: str, *, ca: bool, pip: bool) -> str:
    """Bash run in the preparing container (as the image's user, in the repository, with network);
    `runner` is the runner's command with the warm patch."""
    lines = [
        "set -euo pipefail",
        f"cd {REPO_DIR}",
        # the repository's changes, and every untracked or ignored file with its content's hash
        f"snapshot() {{ git -C {REPO_DIR} status --porcelain; "
        f"(cd {REPO_DIR} && git ls-files --others -z | xargs -0 -r sha1sum); }}",
        'before="$(snapshot | sort)"',
    ]
    if ca:
        lines += [f"export {name}={BUILD_DIR}/ca.pem" for name in CA_VARIABLES]
    if pip:
        lines += [
            f"mkdir -p {WHEELHOUSE}",
            f"python - <<'EOF' > {FILES_DIR}/build-requires.txt{_BUILD_REQUIRES}EOF",
            f"python -m pip wheel -q --disable-pip-version-check -w {WHEELHOUSE} -r {FILES_DIR}/build-requires.txt",
        ]
    lines += [
        f'{runner} || echo "the warm run exited $? (its tests may need a patch): the gold runs offline decide"',
        f"rm -rf {BUILD_DIR} {FILES_DIR}/*",
        # what is committed is the base as it was: a runner that leaves its patch applied or files
        # behind (no clean-up trap) must not hand them to every sandbox
        'new="$(comm -13 <(printf "%s\\n" "$before") <(snapshot | sort))"',
        'test -z "$new" || { echo "the runner left the repository changed:"; printf "%s\\n" "$new" | head; exit 1; }',
        f'test "$(git -C {REPO_DIR} rev-parse HEAD)" = "$(cat {REPO_DIR}/.git/cooperbench-ready)" '
        '|| { echo "the runner moved HEAD off the base commit"; exit 1; }',
    ]
    return "\n".join(lines) + "\n"

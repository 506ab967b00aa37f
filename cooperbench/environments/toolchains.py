"""What a task's test runner needs, read from its script: toolchains, their caches and offline switches.

A published runner installs its dependencies at every run (`uv venv`, `uv pip install`,
`npm ci`, `go test` fetching modules, `cargo test` fetching crates). Each `Toolchain` here
names the program it needs on the worker, the cache that holds what it downloads, the
variables that point it at that cache (while preparing, with network) and the switches that
keep it offline afterwards. A runner that installs system packages at run time
(`sudo apt-get`, `yum`) cannot be prepared: that is a `blocker`.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Toolchain:
    name: str
    pattern: re.Pattern  # how a runner shows that it uses the toolchain
    programs: tuple[str, ...]  # what must be on the worker's PATH
    cache: str  # the cache folder's name in the environment
    variables: dict[str, str]  # while preparing and after: where the cache is ({<cache>} placeholders)
    offline: dict[str, str]  # added once prepared: no network, read only what is cached
    tested_here: bool = False  # exercised on a real published task on this project's CI


TOOLCHAINS: tuple[Toolchain, ...] = (
    Toolchain(
        "uv",
        re.compile(r"\buv\s+(venv|pip|sync|run|tool)\b"),
        ("uv",),
        "uv",
        {"UV_CACHE_DIR": "{uv}", "UV_LINK_MODE": "copy", "UV_PYTHON_DOWNLOADS": "never"},
        {"UV_OFFLINE": "1"},
        tested_here=True,
    ),
    Toolchain(
        "npm",
        re.compile(r"\b(npm|npx|yarn|pnpm)\s"),
        ("npm",),
        "npm",
        # pnpm reads the same variables: its content-addressed store lives beside npm's cache. Packages
        # whose install script downloads an app from its vendor's site (not a registry: unreachable on a
        # locked-down farm, and no unit test runs it) are told not to.
        {
            "npm_config_cache": "{npm}",
            "npm_config_store_dir": "{npm}/pnpm-store",
            "npm_config_update_notifier": "false",
            "CYPRESS_INSTALL_BINARY": "0",
            "PUPPETEER_SKIP_DOWNLOAD": "1",
            "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        },
        {"npm_config_offline": "true", "npm_config_prefer_offline": "true"},
    ),
    Toolchain(
        "go",
        re.compile(r"\bgo\s+(test|build|mod|run|get|vet)\b"),
        ("go",),
        "go",
        {"GOMODCACHE": "{go}/mod", "GOCACHE": "{go}/build", "GOPATH": "{go}/path", "GOTOOLCHAIN": "local"},
        {"GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOSUMDB": "off"},
    ),
    Toolchain(
        "cargo",
        re.compile(r"\bcargo\s+(test|build|run|fetch|install)\b"),
        ("cargo",),
        "cargo",
        {"CARGO_HOME": "{cargo}", "CARGO_TARGET_DIR": "{sandbox}/target"},
        {"CARGO_NET_OFFLINE": "true"},
    ),
)

# How this worker reaches package registries (certificate bundles, proxies, mirrors): passed to the
# preparing step only, which has network and runs no agent code; never to agents or evaluations.
NETWORK_VARIABLES = re.compile(
    r"^(SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|NODE_EXTRA_CA_CERTS|PIP_CERT|"
    r"(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy|UV_(DEFAULT_)?INDEX(_URL)?|UV_EXTRA_INDEX_URL|UV_NATIVE_TLS|"
    r"UV_SYSTEM_CERTS|PIP_INDEX_URL|PIP_EXTRA_INDEX_URL|npm_config_registry|NPM_CONFIG_REGISTRY|GOPROXY|"
    r"GONOSUMDB|GOPRIVATE|CARGO_REGISTRIES_\w+|CARGO_HTTP_\w+)$"
)


def network_variables() -> dict[str, str]:
    """The worker's own registry settings (see NETWORK_VARIABLES), for the preparing step."""
    return {k: v for k, v in os.environ.items() if NETWORK_VARIABLES.match(k)}


# Installs that need the network at every run and that no cache here makes offline.
PIP = re.compile(r"(?<![\w-])(?<!uv )(python3?\s+-m\s+)?pip3?\s+install\b")
SUDO = re.compile(r"(?<![\w-])sudo\s")
SYSTEM_INSTALL = re.compile(r"(?<![\w-])(apt-get|apt|yum|dnf|apk)\s+(-\S+\s+)*(install|add)\b")


# pip in a task image: what it installs stays in the committed image, build backends in a wheelhouse
# (see `in_image`); on the host, pip has no cache that makes a fresh install offline.
WHEELHOUSE = "/opt/cooperbench/wheels"
PIP_IN_IMAGE = Toolchain(
    "pip",
    PIP,
    ("pip",),
    "pip",
    {},
    {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": WHEELHOUSE, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    tested_here=True,
)


@dataclass
class Needs:
    """What a runner script needs: toolchains, and why it cannot be prepared (if it cannot)."""

    toolchains: list[Toolchain] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    in_image: bool = False  # the runner runs in the task's image, whose toolchains are its own

    @property
    def missing_programs(self) -> list[str]:
        """Programs the runner needs that a sandbox on this worker would not find on its PATH."""
        from ..sandbox.local import command_path

        if self.in_image:
            return []
        return [
            p
            for t in self.toolchains
            for p in t.programs
            if p not in PROVIDED_PROGRAMS and shutil.which(p, path=command_path()) is None
        ]

    @property
    def problems(self) -> list[str]:
        """Why the environment cannot be prepared on this machine (empty: it can)."""
        missing = [f"{p} is not installed on this worker (its runner needs it)" for p in self.missing_programs]
        return self.blockers + missing


# Programs the farm provides itself at the version a task needs (see `provision`), never the host's:
# a runner's branch that installs one of them when it is missing never runs.
PROVIDED = {"go": ("go", "gofmt"), "node": ("node", "npm", "npx"), "pnpm": ("pnpm", "pnpx")}
PROVIDED_PROGRAMS = frozenset(p for programs in PROVIDED.values() for p in programs)
_GUARD = re.compile(r"^\s*if\s+!\s+command\s+-v\s+([\w.-]+)")
_IF, _FI = re.compile(r"(?:^|[;&|]|\s)if\s"), re.compile(r"(?:^|[;&|]|\s)fi\b")


def without_guarded_installs(code: str) -> str:
    """The script without its `if ! command -v PROGRAM ...; then ... fi` blocks for programs the farm
    provides: what they do (download a toolchain, often with sudo) never happens in its sandboxes."""
    kept, depth = [], 0
    for line in code.splitlines():
        if depth == 0:
            guard = _GUARD.match(line)
            if guard is None or guard.group(1) not in PROVIDED_PROGRAMS:
                kept.append(line)
                continue
        depth += len(_IF.findall(line)) - len(_FI.findall(line))
        depth = max(depth, 0)
    return "\n".join(kept)


def provided_tools(needs: Needs, script: str) -> list[str]:
    """The toolchains the farm provides for this runner, in the order they are installed (pnpm after node)."""
    names = {t.name for t in needs.toolchains}
    tools = ["go"] if "go" in names else []
    if "npm" in names:
        tools.append("node")
        if re.search(r"\bpnpm\b", script):
            tools.append("pnpm")
    return tools


def needs(script: str, *, in_image: bool = False) -> Needs:
    """Read a runner script (`run_tests.sh`, or an image's `runner.sh` when `in_image`): the
    toolchains it uses and what blocks preparing it."""
    code = "\n".join(line.split("#", 1)[0] if not line.startswith("#!") else "" for line in script.splitlines())
    if not in_image:  # in an image, the image's own toolchains run
        code = without_guarded_installs(code)
    found = Needs([t for t in TOOLCHAINS if t.pattern.search(code)], in_image=in_image)
    if SYSTEM_INSTALL.search(code):
        how = "with sudo " if SUDO.search(code) else ""
        found.blockers.append(f"installs system packages {how}(apt-get, yum, ...) at run time")
    elif SUDO.search(code):
        found.blockers.append("runs commands with sudo")
    if PIP.search(code) and in_image:
        found.toolchains.append(PIP_IN_IMAGE)
    elif PIP.search(code):
        found.blockers.append("installs with pip at run time (offline pip environments are not built yet)")
    return found


REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*(\[[A-Za-z0-9_,\-]+\])?([<>=!~]=?[A-Za-z0-9_.*]+)?$")


def agent_tools(script: str) -> list[str]:
    """The test tools a uv runner installs by name (`uv pip install pytest pytest-xdist` -> both).

    An editable or requirements-file install (`-e .`, `-r file`) is the project itself,
    which the agent's sandbox sets up apart; flags and paths are skipped."""
    tools: list[str] = []
    for match in re.finditer(r"\buv\s+pip\s+install\s+([^\n;&|]+)", script):
        words = [w.strip("\"'") for w in match.group(1).split()]
        if any(w in ("-e", "--editable", "-r", "--requirement") for w in words):
            continue
        tools += [w for w in words if REQUIREMENT.match(w)]
    return list(dict.fromkeys(tools))

"""A task's Dockerfile made buildable where neither Docker Hub nor GitHub can be reached.

The published Dockerfiles start `FROM python:3.11-slim` and `git clone` their upstream from
GitHub. A lab behind a firewall (and this project's CI) has a registry mirror, the farm's
repository cache and perhaps a TLS-inspecting proxy instead. The Dockerfile is rewritten in
the build context only, never on disk:

- `FROM` of a Docker Hub image goes through the `registry_mirror` setting:
  `python:3.11-slim` -> `<mirror>/library/python:3.11-slim`. Images of other registries,
  build stages and `${ARG}` references are left as written.
- before the first instruction that clones the task's upstream, the upstream (the farm's
  repository cache at the base commit, which honours git's `insteadOf`) is copied in and git
  is pointed at it for the build (`GIT_CONFIG_SYSTEM`, an `ARG`: it never reaches the image's
  configuration): the clone gets the base commit and its history, nothing after it.
- with a `build_ca_bundle`, each stage trusts that PEM bundle in its `RUN` steps
  (pip, requests, curl, git, OpenSSL, Node), again as build arguments only.

What is copied in lives under `/opt/cooperbench-build`, which the sanitizing step deletes.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from .. import settings

BUILD_DIR = "/opt/cooperbench-build"
CONTEXT_DIR = "cooperbench-build"  # the same folder in the build context
HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
CA_VARIABLES = (
    "SSL_CERT_FILE",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
)
_FROM = re.compile(r"^FROM\s+((?:--\S+\s+)*)(\S+)(\s+AS\s+(\S+))?\s*$", re.I | re.S)
# a clone's URL, on the same command (continued lines included)
_CLONE = re.compile(r"\bgit\s+clone\b(?:\\\n|[^\n;&|])*?\s['\"]?(\w+://[^\s'\"]+)")


@dataclass(frozen=True)
class BuildSupply:
    """What the build is given beyond the task folder; `describe()` goes into the image's tag."""

    mirror: str | None = None
    ca_bundle: bytes | None = None
    upstream_url: str | None = None  # the task's clone URL, served from `upstream_slug`.git
    upstream_slug: str | None = None

    def describe(self) -> str:
        ca = hashlib.sha256(self.ca_bundle).hexdigest()[:16] if self.ca_bundle else ""
        return f"mirror={self.mirror or ''}|ca={ca}|upstream={self.upstream_url or ''}"


def mirror() -> str | None:
    return settings.get("registry_mirror") or None


def ca_bundle() -> bytes | None:
    """The PEM bundle builds trust: the `build_ca_bundle` setting, else (`auto`) this host's own."""
    choice = settings.get("build_ca_bundle")
    if choice == "":
        return None
    if choice in (None, "auto"):
        paths = ssl.get_default_verify_paths()
        for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
            if candidate and Path(candidate).is_file():
                return Path(candidate).read_bytes()
        return None
    try:
        return Path(choice).expanduser().read_bytes()
    except OSError as exc:
        from ..errors import UserError

        raise UserError(f"build_ca_bundle {choice}: {exc.strerror}") from None


def mirrored(ref: str, registry: str | None) -> str:
    """`ref` as pulled through `registry` when it names a Docker Hub image, else unchanged."""
    if not registry or "$" in ref or ref.lower() == "scratch":
        return ref
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        if first not in HUB:
            return ref  # another registry, named in full
        ref = rest
    name = re.split(r"[:@]", ref, maxsplit=1)[0]
    if "/" not in name:
        ref = f"library/{ref}"
    return f"{registry.rstrip('/')}/{ref}"


def _instructions(text: str) -> list[str]:
    """The Dockerfile's logical instructions (continued lines joined), comments and blanks kept."""
    out: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if current:
            current.append(line)
        elif not line.strip() or line.lstrip().startswith("#"):
            out.append(line)
            continue
        else:
            current = [line]
        if not line.rstrip().endswith("\\"):
            out.append("\n".join(current))
            current = []
    if current:
        out.append("\n".join(current))
    return out


def _same_repo(a: str, b: str) -> bool:
    norm = lambda u: u.rstrip("/").removesuffix(".git").lower()  # noqa: E731
    return norm(a) == norm(b)


def gitconfig(supply: BuildSupply, clone_urls: list[str]) -> str:
    local = f"file://{BUILD_DIR}/upstream/{supply.upstream_slug}.git"
    rules = "".join(f'[url "{local}"]\n\tinsteadOf = {u}\n' for u in dict.fromkeys(clone_urls))
    return rules + "[safe]\n\tdirectory = *\n"


def rewrite(text: str, supply: BuildSupply) -> tuple[str, list[str]]:
    """The Dockerfile as built with `supply`, and the upstream clone URLs it serves from the cache."""
    out: list[str] = []
    stages: set[str] = set()
    served: list[str] = []
    upstream_here = False
    for instruction in _instructions(text):
        head = instruction.lstrip()
        match = _FROM.match(head)
        if match:
            flags, ref, _, alias = match.groups()
            ref = ref if ref.lower() in stages else mirrored(ref, supply.mirror)
            out.append(f"FROM {flags}{ref}" + (f" AS {alias}" if alias else ""))
            if alias:
                stages.add(alias.lower())
            upstream_here = False
            if supply.ca_bundle:
                out.append(f"COPY {CONTEXT_DIR}/ca.pem {BUILD_DIR}/ca.pem")
                out += [f"ARG {name}={BUILD_DIR}/ca.pem" for name in CA_VARIABLES]
            continue
        if supply.upstream_url and head.upper().startswith("RUN"):
            urls = [u for u in _CLONE.findall(instruction) if _same_repo(u, supply.upstream_url)]
            if urls and not upstream_here:
                out.append(f"COPY {CONTEXT_DIR}/upstream/ {BUILD_DIR}/upstream/")
                out.append(f"ARG GIT_CONFIG_SYSTEM={BUILD_DIR}/upstream/gitconfig")
                upstream_here = True
            served += urls
        out.append(instruction)
    return "\n".join(out) + "\n", served

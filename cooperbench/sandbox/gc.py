"""Removes the containers a dead worker left behind (`cooperbench sandbox gc`).

Every sandbox container carries the label `cooperbench.owner = <host>:<pid>:<pid start time>`
of the process that made it. A worker that exits normally removes its own; one killed hard
(SIGKILL, OOM, power loss) cannot. `gc()` removes every cooperbench container whose owner
is a process of this host that no longer exists, and the git servers whose folder is gone;
with `all=True`, every cooperbench container of this host, live owner or not, plus the git
servers and their network.
Containers owned by other hosts are never touched: their own `gc` judges them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import UserError
from . import SandboxError
from .docker import GIT_NETWORK, LABEL, OWNER, _start_time, connect


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _start_time(pid) == started  # "" for a zombie: dead too


def gc(all: bool = False, client=None) -> list[str]:
    """Remove orphaned cooperbench containers of this host; returns the names removed."""
    if client is None:
        try:
            client = connect()
        except SandboxError as exc:
            raise UserError(str(exc)) from None
    host = socket.gethostname()
    removed = []
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        labels = container.labels or {}
        owner = labels.get(OWNER)
        if not owner:  # a git server: with all=True, or when the folder it serves is gone
            root = labels.get(f"{LABEL}.git-root")
            doomed = (
                labels.get(f"{LABEL}.service") == "git"
                and labels.get(f"{LABEL}.host") == host
                and (all or not (root and Path(root).is_dir()))
            )
        else:
            owner_host, _, rest = owner.partition(":")
            pid, _, started = rest.partition(":")
            doomed = owner_host == host and (all or not (pid.isdigit() and _alive(int(pid), started)))
        if doomed:
            try:
                container.remove(force=True)
                removed.append(container.name)
            except Exception:  # already gone
                pass
    if all:
        for network in client.networks.list(names=[GIT_NETWORK]):
            try:
                network.remove()
            except Exception:
                pass
    return sorted(removed)

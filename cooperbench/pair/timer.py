"""The harness's own time limit on one agent run, whatever the agent (`--agent-time-limit`).

An agent bounds its run itself (`mini_swe_agent`: `wall_time_limit`), but one that does not,
or overshoots it (a command or a model call that takes long), must not hold a worker for
ever. When the limit passes, `AgentTimer` captures the agent's change so far, then closes
its sandbox: the command running in it is killed and every later command fails. The run
then ends as `LimitsExceeded` with the captured patch: the agent's own outcome, never an
infrastructure failure. An agent stuck outside its sandbox (a model call that never
returns) holds its worker until that call returns; its result is then the same.
"""

from __future__ import annotations

import logging
import threading

from . import capture

log = logging.getLogger(__name__)


class AgentTimer:
    """Arm with `with AgentTimer(sandbox, seconds) as timer:` around the agent's run.

    After the block, `fired` says whether the limit passed, and `patch` holds what the
    agent had changed by then.
    """

    def __init__(self, sandbox, seconds: float | None):
        self.sandbox = sandbox
        self.seconds = seconds
        self.fired = False
        self.patch = ""
        self._over = False  # the run has ended: too late to fire
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire) if seconds else None

    @property
    def reason(self) -> str:
        return f"the harness's time limit for an agent run ({self.seconds:g} s) was reached"

    def __enter__(self) -> AgentTimer:
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:  # a firing in progress finishes before the harness goes on; a later one does nothing
            self._over = True

    def _fire(self) -> None:
        with self._lock:
            if self._over:
                return
            self.fired = True
            try:
                self.patch = capture.capture(self.sandbox)
            except Exception as exc:  # noqa: BLE001 - the limit holds even if nothing can be captured
                log.warning("cannot capture the change of an agent past its time limit: %s", exc)
            self.sandbox.close()

"""A real server speaking the Google Cloud Storage JSON API (gcp-storage-emulator), on loopback.

`google-cloud-storage` talks to it when `STORAGE_EMULATOR_HOST` names it, with anonymous
credentials, exactly as it talks to GCS. `stop()` and `start()` take it down and bring it back on
the same port (an outage); its objects live in memory for the emulator's life.
"""

from __future__ import annotations

import socket
import time

from gcp_storage_emulator.server import create_server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    def __init__(self, bucket: str = "cooperbench-test"):
        self.bucket = bucket
        self.port = free_port()
        self.host = f"http://127.0.0.1:{self.port}"
        self.server = None

    def start(self) -> Emulator:
        deadline = time.monotonic() + 30
        while True:
            try:
                self.server = create_server("127.0.0.1", self.port, in_memory=True, default_bucket=self.bucket)
                self.server.start()
                return self
            except OSError:  # the port of a server just stopped, not yet free again
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

"""The Google Cloud Storage artifact store: `gs://bucket/prefix`, through google-cloud-storage.

Credentials are the library's standard ones (Application Default Credentials: a service
account of the worker's VM, `GOOGLE_APPLICATION_CREDENTIALS`, `gcloud auth application-default
login`); with `STORAGE_EMULATOR_HOST` set, the library talks to that emulator anonymously. Files
are uploaded and downloaded streamed (objects over 8 MiB as resumable uploads, in chunks); the
library's own retries are switched off so that the store's one policy (`store.backends.Retrying`)
applies to every call.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import requests
from google.api_core import exceptions as api
from google.auth import exceptions as auth
from google.cloud import storage

TIMEOUT = (10, 120)  # seconds to connect, and between two reads of the answer


@cache
def _client(pid: int, emulator: str | None) -> storage.Client:
    """One client per process (a forked worker makes its own) and per emulator (tests start several)."""
    return storage.Client()


class GCSStore:
    transient = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        auth.TransportError,
        api.TooManyRequests,
        api.InternalServerError,
        api.BadGateway,
        api.ServiceUnavailable,
        api.GatewayTimeout,
        ConnectionError,
        TimeoutError,
    )

    def __init__(self, url: str):
        rest = url.removeprefix("gs://")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ValueError("a gs:// URL names a bucket: gs://BUCKET[/PREFIX]")
        self.url = url
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")

    @property
    def bucket(self) -> storage.Bucket:
        return _client(os.getpid(), os.environ.get("STORAGE_EMULATOR_HOST")).bucket(self.bucket_name)

    def name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def url_of(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self.name(key)}"

    def put_file(self, key: str, path: Path) -> None:
        self.bucket.blob(self.name(key)).upload_from_filename(str(path), retry=None, timeout=TIMEOUT)

    def get_file(self, key: str, dest: Path) -> bool:
        try:
            self.bucket.blob(self.name(key)).download_to_filename(str(dest), retry=None, timeout=TIMEOUT)
        except api.NotFound:
            Path(dest).unlink(missing_ok=True)
            return False
        return True

    def read(self, key: str, start: int = 0) -> bytes | None:
        try:
            return self.bucket.blob(self.name(key)).download_as_bytes(start=start or None, retry=None, timeout=TIMEOUT)
        except api.NotFound:
            return None
        except api.RequestRangeNotSatisfiable:
            return b""

    def size(self, key: str) -> int | None:
        blob = self.bucket.get_blob(self.name(key), retry=None, timeout=TIMEOUT)
        return None if blob is None else blob.size

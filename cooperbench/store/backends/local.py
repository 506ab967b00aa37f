"""The local-folder artifact store (the default): objects are files under one folder.

A plain path or a `file://` URL names the folder. A write goes to a temporary file beside the
object and is renamed over it, so a reader sees the whole object or none; a shared file system
(NFS) mounted at the same path on every worker makes it a fleet's store.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHUNK = 1 << 20


class LocalStore:
    # the folder cannot be reached or written for now (a mount gone, a disk full); a missing object
    # is not a failure (each method says so), so every OSError left is worth a few more tries
    transient = (OSError,)

    def __init__(self, url: str):
        if url.startswith("file://"):
            url = unquote(urlsplit(url).path)
        self.url = url
        self.root = Path(url).expanduser().resolve()

    def path(self, key: str) -> Path:
        return self.root / key

    def url_of(self, key: str) -> str:
        return str(self.path(key))

    def put_file(self, key: str, path: Path) -> None:
        with open(path, "rb") as src:
            self._replace(key, lambda out: shutil.copyfileobj(src, out, CHUNK))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._replace(key, lambda out: out.write(data))

    def _replace(self, key: str, write) -> None:
        """Write the object beside its place, then rename it there: a reader sees all of it or none."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_file(self, key: str, dest: Path) -> bool:
        try:
            src = open(self.path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            return False
        with src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        return True

    def read(self, key: str, start: int = 0) -> bytes | None:
        try:
            with open(self.path(key), "rb") as f:
                f.seek(start)
                return f.read()
        except (FileNotFoundError, IsADirectoryError):
            return None

    def size(self, key: str) -> int | None:
        try:
            st = self.path(key).stat()
        except FileNotFoundError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

"""Blob store port for original uploads, and its local-directory adapter."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol


def blob_key(document_id: str, version: int) -> str:
    """Version 1 lives under the document id; a newer version under ``<id>.v<n>`` until it is ready."""
    return document_id if version <= 1 else f"{document_id}.v{version}"


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (readers never see half a file)."""

    def get(self, key: str) -> bytes:
        """Return the bytes under ``key``; raises FileNotFoundError when absent."""

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""


class LocalBlobStore:
    """Files under one directory; writes go to a temporary file that is renamed into place."""

    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"invalid blob key {key!r}")
        return self._root / key

    def put(self, key: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

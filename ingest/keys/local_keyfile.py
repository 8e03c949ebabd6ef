"""The embedded master key: a 0600 JSON file of key versions under the data directory.

Created at first start. Each wrapped value is ``<version>:<base64 of AES-256-GCM sealed key>``.
Rotation appends a version and makes it current; older versions stay until :meth:`retire`, so a
rotation that is interrupted half-way leaves every wrapped key readable.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
from pathlib import Path

from ingest.errors import ServiceUnavailable
from ingest.keys.crypto import DecryptionFailed, new_key, open_sealed, seal

FORMAT = "enclave-master-key/1"


class KeyUnavailable(ServiceUnavailable):
    code = "key_unavailable"


class LocalKeyFile:
    """:class:`~ingest.keys.port.KeyEncryptionKey` backed by a file only the service user can read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._versions: dict[str, bytes] = {}
        self._current = ""
        self._mtime_ns = -1

    def warm_up(self) -> None:
        with self._lock:
            if not self._path.exists():
                self._create()
            self._reload()

    @property
    def current_version(self) -> str:
        self._refresh()
        return self._current

    def wrap(self, data_key: bytes, context: str) -> str:
        self._refresh()
        sealed = seal(self._versions[self._current], data_key, context.encode("utf-8"))
        return f"{self._current}:{base64.urlsafe_b64encode(sealed).decode('ascii')}"

    def unwrap(self, wrapped: str, context: str) -> bytes:
        version, _, body = wrapped.partition(":")
        self._refresh()
        key = self._versions.get(version)
        if key is None:
            raise KeyUnavailable(
                f"master key version {version!r} is not in {self._path}; restore the key file from backup"
            )
        try:
            return open_sealed(key, base64.urlsafe_b64decode(body), context.encode("utf-8"))
        except DecryptionFailed as exc:
            raise KeyUnavailable(
                f"a data key does not unwrap under master key {version!r} (wrong or damaged key file)"
            ) from exc

    def version_of(self, wrapped: str) -> str:
        return wrapped.partition(":")[0]

    def rotate(self) -> str:
        with self._lock:
            self._reload()
            version = f"v{max((int(v[1:]) for v in self._versions), default=0) + 1}"
            self._versions[version] = new_key()
            self._current = version
            self._write()
            return version

    def retire(self, version: str) -> None:
        with self._lock:
            self._reload()
            if version == self._current:
                raise ValueError("the current master key version cannot be retired; rotate first")
            self._versions.pop(version, None)
            self._write()

    # -- file handling ----------------------------------------------------------------------------
    def _create(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self._path.parent, 0o700)
        self._versions, self._current = {"v1": new_key()}, "v1"
        self._write(exclusive=True)

    def _write(self, *, exclusive: bool = False) -> None:
        body = {
            "format": FORMAT,
            "current": self._current,
            "keys": {v: base64.b64encode(k).decode("ascii") for v, k in self._versions.items()},
        }
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".master-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
                handle.flush()
                os.fsync(handle.fileno())
            if exclusive:
                os.link(tmp, self._path)  # fails if another process created it first
                os.unlink(tmp)
            else:
                os.replace(tmp, self._path)
        except FileExistsError:
            Path(tmp).unlink(missing_ok=True)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _reload(self) -> None:
        try:
            stat = self._path.stat()
            body = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyUnavailable(f"cannot read the master key file {self._path}: {type(exc).__name__}") from exc
        if stat.st_mode & 0o077:
            raise KeyUnavailable(f"{self._path} is readable by other users; run: chmod 600 {self._path}")
        if body.get("format") != FORMAT or body.get("current") not in body.get("keys", {}):
            raise KeyUnavailable(f"{self._path} is not an Enclave master key file")
        self._versions = {v: base64.b64decode(k) for v, k in body["keys"].items()}
        self._current = body["current"]
        self._mtime_ns = stat.st_mtime_ns

    def _refresh(self) -> None:
        """Pick up a rotation made by another process (cheap: one stat)."""
        try:
            changed = self._path.stat().st_mtime_ns != self._mtime_ns
        except OSError as exc:
            raise KeyUnavailable(f"the master key file {self._path} is gone; restore it from backup") from exc
        if changed:
            with self._lock:
                self._reload()

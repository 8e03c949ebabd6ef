"""The backup archive: a gzipped tar, sealed in AES-256-GCM frames under a key that is not in it.

Layout: ``MAGIC``, a 4-byte header length, the JSON header (format, key derivation, a key check,
frame size), then frames of ``4-byte length || nonce || ciphertext+tag``. Every frame's associated
data is the header's SHA-256, the frame's number and a last-frame flag, so an altered header, a
frame altered, dropped, reordered or swapped in from another archive, and a truncated file (no
frame flagged last) all fail to open. Inside, ``MANIFEST.json`` (the last member) holds the SHA-256
and size of every other member; :func:`read_archive` checks both the frames and the manifest.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ingest.config import Settings, inside
from ingest.errors import ConfigurationError, EnclaveError
from ingest.keys.crypto import KEY_BYTES, NONCE_BYTES, new_key

MAGIC = b"ENCLAVE-BACKUP/1\n"
FORMAT = "enclave-backup/1"
MANIFEST = "MANIFEST.json"
FRAME_BYTES = 1 << 20
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
KEY_CHECK = b"enclave/backup/key-check/v1"
READ_BYTES = 1 << 20


class ArchiveInvalid(EnclaveError):
    """The archive is not an Enclave backup, was altered or truncated, or does not match its manifest."""

    code = "backup_invalid"
    status = 422


class BackupKeyWrong(EnclaveError):
    """The configured backup key (or passphrase) is not the one this archive was sealed under."""

    code = "backup_key_wrong"
    status = 422


@dataclass(frozen=True)
class BackupKey:
    """Where the archive key comes from: a key file's 32 bytes, or a passphrase stretched with scrypt."""

    secret: bytes
    passphrase: bool

    def derive(self, salt: bytes) -> bytes:
        if not self.passphrase:
            return self.secret
        return Scrypt(salt=salt, length=KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(self.secret)


def backup_key(settings: Settings) -> BackupKey:
    """The configured backup key.

    :raises ConfigurationError: none configured, both configured, a key file inside the data
        directory, unreadable, readable by others, or not 32 base64-encoded bytes.
    """
    cfg = settings.backup
    if (cfg.key_file is None) == (cfg.passphrase is None):
        raise ConfigurationError(
            "set exactly one of ENCLAVE_BACKUP__KEY_FILE (create one with `enclave backup key FILE`) or "
            "ENCLAVE_BACKUP__PASSPHRASE; keep it away from the data directory and from the archives"
        )
    if cfg.passphrase is not None:
        return BackupKey(cfg.passphrase.get_secret_value().encode("utf-8"), passphrase=True)
    assert cfg.key_file is not None
    return BackupKey(_read_key_file(cfg.key_file, settings.data_dir), passphrase=False)


def _read_key_file(path: Path, data_dir: Path) -> bytes:
    if inside(path, data_dir):
        raise ConfigurationError(
            "ENCLAVE_BACKUP__KEY_FILE lies inside ENCLAVE_DATA_DIR: whoever copies the data directory could open "
            "every archive; keep it on a separate mount (and a copy offline)"
        )
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigurationError(f"{path} is readable by other users; run: chmod 600 {path}")
        key = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read the backup key file {path}: {type(exc).__name__}") from exc
    if len(key) != KEY_BYTES:
        raise ConfigurationError(f"{path} does not hold a 32-byte key; create one with `enclave backup key FILE`")
    return key


def write_key_file(path: Path) -> None:
    """Create a new backup key file (0600); never overwrites one (every archive sealed under it needs it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.b64encode(new_key()).decode("ascii") + "\n")


# -- the sealed stream ----------------------------------------------------------------------------
def _aad(header_digest: bytes, number: int, last: bool) -> bytes:
    return header_digest + number.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


class SealingWriter(io.RawIOBase):
    """A write-only stream that seals what it is given in frames; :meth:`close` writes the last frame."""

    def __init__(self, sink: BinaryIO, key: BackupKey) -> None:
        super().__init__()
        salt = os.urandom(16)
        self._key = key.derive(salt)
        header: dict[str, Any] = {
            "format": FORMAT,
            "kdf": "scrypt" if key.passphrase else "key-file",
            "salt": base64.b64encode(salt).decode("ascii"),
            "key_check": base64.b64encode(hmac.new(self._key, KEY_CHECK + salt, "sha256").digest()).decode("ascii"),
            "frame_bytes": FRAME_BYTES,
        }
        if key.passphrase:
            header["scrypt"] = {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
        raw = json.dumps(header, sort_keys=True).encode("utf-8")
        sink.write(MAGIC + len(raw).to_bytes(4, "big") + raw)
        self._sink = sink
        self._digest = hashlib.sha256(raw).digest()
        self._buffer = bytearray()
        self._number = 0
        self.bytes_in = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._buffer += chunk
        self.bytes_in += len(chunk)
        while len(self._buffer) > FRAME_BYTES:  # keep at least one byte back: the last frame is never empty
            self._frame(bytes(self._buffer[:FRAME_BYTES]), last=False)
            del self._buffer[:FRAME_BYTES]
        return len(chunk)

    def _frame(self, plain: bytes, *, last: bool) -> None:
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + AESGCM(self._key).encrypt(nonce, plain, _aad(self._digest, self._number, last))
        self._sink.write(len(sealed).to_bytes(4, "big") + sealed)
        self._number += 1

    def close(self) -> None:
        if not self.closed:
            self._frame(bytes(self._buffer), last=True)
            self._buffer.clear()
        super().close()


class OpeningReader(io.RawIOBase):
    """A read-only stream of the plaintext of a sealed archive, checked frame by frame.

    :raises ArchiveInvalid: (from :meth:`read`) an altered, reordered or truncated frame.
    :raises BackupKeyWrong: (from the constructor) the key does not match the header's key check.
    """

    def __init__(self, source: BinaryIO, key: BackupKey) -> None:
        super().__init__()
        if source.read(len(MAGIC)) != MAGIC:
            raise ArchiveInvalid("not an Enclave backup archive (its first bytes are not the backup format's)")
        header_raw = source.read(_length(source.read(4), "header"))
        try:
            header = json.loads(header_raw)
            salt = base64.b64decode(header["salt"])
            check = base64.b64decode(header["key_check"])
            kdf = header["kdf"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ArchiveInvalid("the archive's header is damaged; use another copy of this backup") from exc
        if header.get("format") != FORMAT or kdf not in ("scrypt", "key-file"):
            raise ArchiveInvalid(f"unsupported backup format {header.get('format')!r}")
        if (kdf == "scrypt") != key.passphrase:
            raise BackupKeyWrong(f"this archive was sealed under a {kdf}; configure that kind of backup key")
        self._key = key.derive(salt)
        if not hmac.compare_digest(hmac.new(self._key, KEY_CHECK + salt, "sha256").digest(), check):
            raise BackupKeyWrong("the backup key (or passphrase) is not the one this archive was sealed under")
        self._source = source
        self._digest = hashlib.sha256(header_raw).digest()
        self._number = 0
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._pending and not self._done:
            self._pending = self._next_frame()
        count = min(len(target), len(self._pending))
        target[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _next_frame(self) -> bytes:
        prefix = self._source.read(4)
        if not prefix:
            raise ArchiveInvalid(f"the archive is truncated: it ends after {self._number} frame(s), before its last")
        sealed = self._source.read(_length(prefix, "frame"))
        for last in (False, True):
            try:
                aad = _aad(self._digest, self._number, last)
                plain = AESGCM(self._key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
            except (InvalidTag, ValueError):
                continue
            self._number += 1
            if last:
                self._done = True
                if self._source.read(1):
                    raise ArchiveInvalid("the archive has bytes after its last frame: it was altered")
            return plain
        raise ArchiveInvalid(
            f"frame {self._number} of the archive fails its integrity check: the archive was altered, truncated "
            "or assembled from pieces of others; use another copy"
        )


def _length(prefix: bytes, what: str) -> int:
    if len(prefix) != 4:
        raise ArchiveInvalid(f"the archive is truncated inside a {what} length")
    return int.from_bytes(prefix, "big")


# -- members and the manifest -----------------------------------------------------------------------
class ArchiveWriter:
    """Adds files to the sealed tar, hashing each; :meth:`finish` appends the manifest and closes."""

    def __init__(self, sink: BinaryIO, key: BackupKey) -> None:
        self._sealer = SealingWriter(sink, key)
        # level 1: the index's mostly empty preallocated files shrink ~100x; the originals are ciphertext anyway
        self._gzip = gzip.GzipFile(fileobj=self._sealer, mode="wb", compresslevel=1, mtime=0)
        self._tar = tarfile.open(fileobj=self._gzip, mode="w|")  # noqa: SIM115 - closed by finish()
        self.members: dict[str, dict[str, Any]] = {}

    def add_bytes(self, name: str, data: bytes) -> None:
        self._add(name, io.BytesIO(data), len(data))

    def add_file(self, name: str, path: Path) -> None:
        with path.open("rb") as handle:
            self._add(name, handle, os.fstat(handle.fileno()).st_size)

    def add_tree(self, prefix: str, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.add_file(f"{prefix}/{path.relative_to(root).as_posix()}", path)

    def _add(self, name: str, handle: IO[bytes], size: int) -> None:
        hashing = _HashingReader(handle)
        info = tarfile.TarInfo(name)
        info.size, info.mode = size, 0o600
        self._tar.addfile(info, hashing)
        self.members[name] = {"sha256": hashing.hexdigest(), "bytes": size}

    def finish(self, manifest: dict[str, Any]) -> int:
        """Write the manifest (with every member's hash) last; returns the plaintext tar's size."""
        body = json.dumps({**manifest, "format": FORMAT, "members": self.members}, indent=1, sort_keys=True)
        data = body.encode("utf-8")
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(data), 0o600
        self._tar.addfile(info, io.BytesIO(data))
        self._tar.close()
        self._gzip.close()
        self._sealer.close()
        return self._sealer.bytes_in


class _HashingReader:
    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._hash.update(data)
        return data

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


MemberSink = Callable[[str, Iterator[bytes]], None]


def read_archive(path: Path, key: BackupKey, sink: MemberSink | None = None) -> dict[str, Any]:
    """Open, check and (with ``sink``) unpack an archive; returns its manifest.

    ``sink(name, chunks)`` receives each member's bytes as they are read; nothing read may be
    trusted before this returns, because only then are the last frame and the manifest checked.

    :raises ArchiveInvalid: altered, truncated, or not matching its manifest.
    :raises BackupKeyWrong: sealed under another key.
    """
    seen: dict[str, dict[str, Any]] = {}
    manifest: dict[str, Any] | None = None
    try:
        with path.open("rb") as raw, OpeningReader(raw, key) as opened:
            buffered = io.BufferedReader(opened, READ_BYTES)
            with tarfile.open(fileobj=buffered, mode="r|gz") as tar:
                for info in tar:
                    manifest = _read_member(tar, info, seen, sink, manifest)
                buffered.read()  # the tar's end: reaches the last frame, whose flag proves nothing was cut off
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveInvalid(f"the archive's contents are damaged ({type(exc).__name__}); use another copy") from exc
    return _checked(manifest, seen)


def _read_member(
    tar: tarfile.TarFile,
    info: tarfile.TarInfo,
    seen: dict[str, dict[str, Any]],
    sink: MemberSink | None,
    manifest: dict[str, Any] | None,
) -> dict[str, Any] | None:
    if manifest is not None:
        raise ArchiveInvalid(f"the archive holds {info.name!r} after its manifest")
    if not info.isfile() or not _safe_name(info.name) or info.name in seen:
        raise ArchiveInvalid(f"the archive holds an unexpected member {info.name!r}")
    handle = tar.extractfile(info)
    assert handle is not None
    if info.name == MANIFEST:
        try:
            loaded: dict[str, Any] = json.loads(handle.read())
        except ValueError as exc:
            raise ArchiveInvalid("the archive's manifest is not JSON") from exc
        return loaded
    digest, size = hashlib.sha256(), 0

    def chunks() -> Iterator[bytes]:
        nonlocal size
        while data := handle.read(READ_BYTES):
            digest.update(data)
            size += len(data)
            yield data

    if sink is None:
        for _ in chunks():
            pass
    else:
        sink(info.name, chunks())
        for _ in chunks():  # whatever the sink left unread still counts
            pass
    seen[info.name] = {"sha256": digest.hexdigest(), "bytes": size}
    return None


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _checked(manifest: dict[str, Any] | None, seen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if manifest is None:
        raise ArchiveInvalid("the archive has no manifest: it is incomplete")
    if manifest.get("format") != FORMAT:
        raise ArchiveInvalid(f"unsupported manifest format {manifest.get('format')!r}")
    listed: dict[str, Any] = manifest.get("members", {})
    for name in sorted(set(listed) | set(seen)):
        if listed.get(name) != seen.get(name):
            state = "missing from the archive" if name not in seen else "not what the manifest lists"
            raise ArchiveInvalid(f"member {name!r} is {state}: the archive does not match its manifest")
    return manifest

"""Anchors: the audit chain's head, signed with a key outside the data directory and appended to a file there.

The chain alone cannot show a cut tail, and whoever holds the data directory with its master key can
remove a record and re-sign everything after it. An anchor is one JSON line ``{format, head_seq,
head_hash, time, reason, signature}`` appended to ``ENCLAVE_AUDIT__ANCHOR_FILE``; the signature is an
HMAC-SHA256 under ``ENCLAVE_AUDIT__ANCHOR_KEY_FILE``, which never lies under the data directory, so no
copy of the data directory can forge one, and an append-only file (``chattr +a``, a WORM mount, a log
shipper that forwards each line) cannot take one back. Verification holds the chain against the
highest anchor: fewer records, or another hash at the anchored record, is tampering.

The service anchors at start, every ``anchor_interval_s`` when the head moved, as soon as
``anchor_every_records`` records were appended, and at shutdown; it never anchors a chain that does
not extend the previous anchor (it logs ``audit.anchor_refused`` instead), so an anchor of the
tampered chain can never hide the tampering.

The one way to start a new history is ``enclave restore --accept-audit-gap`` of a backup older than the
newest anchor: it appends a *rebase* anchor naming the anchor it gives up (``rebased_from``), the
``backup.restored`` record names the lost range, and verification holds the chain against the anchors
from the rebase on. The older anchors stay in the file as evidence.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.audit.chain import GENESIS, Head, canonical
from ingest.config import Settings
from ingest.errors import ServiceUnavailable

if TYPE_CHECKING:
    from ingest.audit.trail import AuditTrail

log = logging.getLogger(__name__)
FORMAT = "enclave-audit-anchor/1"
TAIL_BYTES = 4096  # an anchor line is about 250 bytes


class AnchorUnavailable(ServiceUnavailable):
    code = "audit_anchor_unavailable"


@dataclass(frozen=True)
class AnchorReading:
    """The highest authenticated anchor, or why the anchor file cannot be trusted."""

    latest: Head | None
    problem: str | None = None


class AnchorLog:
    """The anchor file and its key: append signed heads, read them back authenticated."""

    def __init__(self, path: Path, key_path: Path) -> None:
        self.path = path
        self.key_path = key_path

    # -- the key ----------------------------------------------------------------------------------
    def _key(self, *, create: bool) -> bytes | None:
        """The anchor key; created (0600) only for an anchor file that holds no anchor yet."""
        try:
            return base64.b64decode(self.key_path.read_text(encoding="ascii").strip(), validate=True)
        except FileNotFoundError:
            if not create or self._has_lines():
                return None
        except (OSError, ValueError) as exc:
            raise AnchorUnavailable(f"the audit anchor key {self.key_path} cannot be read: {exc}") from exc
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            return self._key(create=False)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)).decode("ascii") + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return self._key(create=False)

    def _has_lines(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    def _missing_key(self) -> str:
        return (
            f"the audit anchor key {self.key_path} is missing but {self.path} holds anchors: restore the key "
            "from its backup (without it the anchors cannot be checked)"
        )

    @staticmethod
    def _signature(key: bytes, body: dict[str, Any]) -> str:
        return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()

    # -- writing --------------------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive among the processes of this host that anchor into the same file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append(self, head: Head, reason: str, *, rebased_from: Head | None = None) -> dict[str, Any]:
        """Sign ``head`` and append it as one line (one ``write`` of an ``O_APPEND`` descriptor, then fsync).

        ``rebased_from``: the anchor this one replaces, when an older backup was restored (``enclave restore
        --accept-audit-gap``). Such a line starts a new history: verification holds the chain against it and the
        anchors after it, not against the higher anchors of the history the restore gave up (which stay in
        the file as evidence, and whose range the restore record names).

        :raises AnchorUnavailable: the key cannot be read or created, or the file cannot be written.
        """
        key = self._key(create=True)
        if key is None:
            raise AnchorUnavailable(self._missing_key())
        body: dict[str, Any] = {
            "format": FORMAT,
            "head_seq": head.seq,
            "head_hash": head.hash,
            "time": head.time,
            "reason": reason,
        }
        if rebased_from is not None:
            body["rebased_from"] = {"seq": rebased_from.seq, "hash": rebased_from.hash, "time": rebased_from.time}
        line = body | {"signature": self._signature(key, body)}
        data = (json.dumps(line, sort_keys=True) + "\n").encode("utf-8")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise AnchorUnavailable(f"the audit anchor file {self.path} cannot be written: {exc}") from exc
        return line

    # -- reading --------------------------------------------------------------------------------
    def read(self) -> AnchorReading:
        """Every line authenticated; the highest anchor since the last rebase, or the first line that is not genuine."""
        key = self._key(create=False)
        if key is None:
            return AnchorReading(None, self._missing_key() if self._has_lines() else None)
        latest: Head | None = None
        try:
            with self.path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    parsed = self._parse_line(key, line)
                    if parsed is None:
                        return AnchorReading(latest, self._forged(number))
                    head, rebase = parsed
                    if rebase or latest is None or head.seq >= latest.seq:
                        latest = head
        except FileNotFoundError:
            return AnchorReading(None)
        return AnchorReading(latest)

    def last(self) -> AnchorReading:
        """The last line only: what the anchorer extends (its own lines are appended in order, under the lock)."""
        key = self._key(create=False)
        if key is None:
            return AnchorReading(None, self._missing_key() if self._has_lines() else None)
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - TAIL_BYTES))
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return AnchorReading(None)
        if not lines:
            return AnchorReading(None)
        head = self._parse(key, lines[-1])
        return AnchorReading(head) if head is not None else AnchorReading(None, self._forged(None))

    def _parse(self, key: bytes, line: str) -> Head | None:
        parsed = self._parse_line(key, line)
        return parsed[0] if parsed is not None else None

    def _parse_line(self, key: bytes, line: str) -> tuple[Head, bool] | None:
        """The anchored head and whether the line is a rebase; None for a line that is not a genuine anchor."""
        try:
            found = json.loads(line)
            body = {k: v for k, v in found.items() if k != "signature"}
            genuine = body.get("format") == FORMAT and hmac.compare_digest(
                self._signature(key, body), str(found.get("signature", ""))
            )
            if not genuine:
                return None
            return Head(int(body["head_seq"]), str(body["head_hash"]), str(body["time"])), "rebased_from" in body
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def _forged(self, number: int | None) -> str:
        where = f"line {number} of {self.path}" if number else f"the last line of {self.path}"
        return (
            f"{where} is not an anchor signed with {self.key_path} (forged or altered): the anchor file was "
            "tampered with; keep it as evidence and investigate before anchoring anew"
        )


def anchor_log(settings: Settings) -> AnchorLog | None:
    """The configured anchor file and key, or None when anchoring is off (allowed in dev mode only)."""
    audit = settings.audit
    key_path = audit.resolved_anchor_key_file
    if audit.anchor_file is None or key_path is None:
        return None
    return AnchorLog(audit.anchor_file, key_path)


class Anchorer:
    """Anchors the trail's head at start, on a schedule, after every ``every_records`` appends and at stop."""

    def __init__(self, trail: AuditTrail, anchors: AnchorLog, interval_s: float, every_records: int) -> None:
        self._trail = trail
        self._anchors = anchors
        self._interval_s = interval_s
        self._every_records = every_records
        self._pending = 0
        self._count_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.refused: str | None = None  # why the last attempt wrote nothing (the chain does not extend the anchor)

    def start(self) -> None:
        self._trail.add_listener(self._appended)
        self._thread = threading.Thread(target=self._loop, name="enclave-audit-anchor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the schedule and write the shutdown anchor (after the last request's record)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._trail.remove_listener(self._appended)
        self._anchor_logged("shutdown")

    def anchor(self, reason: str) -> Head | None:
        """Append the current head unless it is already anchored; refuse a chain that does not extend the last anchor.

        :raises AnchorUnavailable: the anchor file or key cannot be used.
        """
        with self._anchors.locked():
            with self._count_lock:
                self._pending = 0  # before the head is read: later appends count toward the next anchor
            last = self._anchors.last()
            head = self._trail.head()
            anchored = last.latest.hash if last.latest is not None else GENESIS
            if last.problem is None and anchored == head.hash:
                return None  # nothing new since the last anchor (or nothing at all yet)
            problem = last.problem or self._trail.extension_problem(last.latest)
            if problem is not None:
                self.refused = problem
                log.error("audit.anchor_refused reason=%s problem=%s", reason, problem)
                return None
            self._anchors.append(head, reason)
        self.refused = None
        return head

    def _appended(self, count: int) -> None:
        with self._count_lock:
            self._pending += count
            due = self._pending >= self._every_records
        if due:
            self._wake.set()

    def _loop(self) -> None:
        self._anchor_logged("start")
        while not self._stopping:
            woken = self._wake.wait(self._interval_s)
            self._wake.clear()
            if self._stopping:
                return
            self._anchor_logged("records" if woken else "schedule")

    def _anchor_logged(self, reason: str) -> None:
        try:
            self.anchor(reason)
        except Exception:  # noqa: BLE001 - the schedule must outlive one failed anchor; the next one retries
            log.exception("audit.anchor_failed reason=%s", reason)

"""The erasure ledger: an append-only file, outside the data directory, of every erasure's ids.

A backup taken before an erasure still holds the erased rows, keys and ciphertext. Restoring it
would bring them back; so every erasure appends a line here *before* its transaction commits,
and every restore re-applies the whole ledger. The ledger holds identifiers only (tenant,
document ids, receipt id, time), never a subject id or any document content.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import Settings, inside
from ingest.errors import ConfigurationError, EnclaveError

log = logging.getLogger(__name__)


class LedgerUnreadable(EnclaveError):
    """A line of the ledger (other than a torn last one) is not an entry: the file was altered."""

    code = "erasure_ledger_unreadable"


@dataclass(frozen=True)
class LedgerEntry:
    at: str
    scope: str
    tenant: str
    document_ids: Sequence[str]
    receipt_id: str
    receipt_sha256: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class ErasureLedger:
    """Appends are fsynced before they return; a failed append fails the erasure (fail closed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: LedgerEntry) -> None:
        line = json.dumps(
            {
                "at": entry.at,
                "scope": entry.scope,
                "tenant": entry.tenant,
                "document_ids": list(entry.document_ids),
                "receipt_id": entry.receipt_id,
                "receipt_sha256": entry.receipt_sha256,
            },
            separators=(",", ":"),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[LedgerEntry]:
        """Every entry; a torn last line (a crash inside an append, whose erasure never committed) is skipped.

        :raises LedgerUnreadable: any other line is not a ledger entry.
        """
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().split(b"\n")
        found: list[LedgerEntry] = []
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                body = json.loads(raw)
                found.append(
                    LedgerEntry(
                        at=str(body["at"]),
                        scope=str(body["scope"]),
                        tenant=str(body["tenant"]),
                        document_ids=[str(d) for d in body["document_ids"]],
                        receipt_id=str(body["receipt_id"]),
                        receipt_sha256=str(body.get("receipt_sha256", "")),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                if number == len(lines):  # no newline after it: the append never finished
                    log.warning("erasure_ledger.torn_line path=%s line=%d", self.path, number)
                    continue
                raise LedgerUnreadable(
                    f"line {number} of the erasure ledger {self.path} is not an entry; restore the file from its "
                    "own (append-only) copy before restoring a backup"
                ) from exc
        return found


def erasure_ledger(settings: Settings) -> ErasureLedger | None:
    """The configured ledger, or None when none is configured.

    :raises ConfigurationError: the ledger lies inside the data directory (it would be lost, or
        restored, with it).
    """
    path = settings.backup.erasure_ledger
    if path is None:
        return None
    if inside(path, settings.data_dir):
        raise ConfigurationError(
            "ENCLAVE_BACKUP__ERASURE_LEDGER lies inside ENCLAVE_DATA_DIR: a restore would replace it with an older "
            "copy and bring erased documents back; put it on a separate mount"
        )
    return ErasureLedger(path)

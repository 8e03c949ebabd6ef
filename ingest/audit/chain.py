"""The chain itself: canonical form, HMAC links, verification and signed checkpoints.

``hash = HMAC-SHA256(audit key, canonical JSON of the record's fields || "|" || prev_hash)``.
Verification walks the records in ``seq`` order and names the first one that is missing, does not
link to its predecessor, or does not match its own HMAC. A checkpoint (count, head seq, head hash,
signed with the same key) kept outside the database makes truncation of the tail detectable; an
anchor (``ingest.audit.anchor``) is the same statement signed with a key outside the data directory.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ingest.store.compliance_models import AuditRecord

GENESIS = "0" * 64
UNCHAINED = ("hash", "prev_hash")
# Columns added after the chain's first format: signed when set, left out while empty, so records
# written before a column existed keep verifying.
ADDED_LATER = ("server_request_id",)
CHECKPOINT_FORMAT = "enclave-audit-checkpoint/1"


def canonical(values: dict[str, Any]) -> bytes:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chained_fields(record: AuditRecord) -> dict[str, Any]:
    return _chained(record.model_dump())


def _chained(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in values.items()
        if name not in UNCHAINED and not (name in ADDED_LATER and value is None)
    }


def link_mac(key: bytes, record: AuditRecord) -> str:
    return link_mac_of_values(key, record.model_dump())


def link_mac_of_values(key: bytes, values: Mapping[str, Any]) -> str:
    """:func:`link_mac` of a record given as its column values (every column of :class:`AuditRecord`)."""
    message = canonical(_chained(values)) + b"|" + str(values["prev_hash"]).encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Head:
    """A head the chain once had: ``seq`` records, the last one's hash ``hash`` (an anchor, already authenticated)."""

    seq: int
    hash: str
    time: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None
    anchor: Head | None = None  # the anchor the chain was held against; None: no anchor configured or written yet

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Walk:
    """State of one verification pass; ``feed`` returns a problem for the first broken record."""

    def __init__(self, key: bytes, wanted: set[int], after: int = 0, prev: str = GENESIS) -> None:
        self.key = key
        self.wanted = wanted
        self.expected = after + 1
        self.prev = prev
        self.count = after
        self.seen: dict[int, str] = {}

    def feed(self, record: AuditRecord) -> str | None:
        if record.seq != self.expected:
            missing = (
                f"records {self.expected}-{record.seq - 1} are"
                if record.seq - 1 > self.expected
                else f"record {self.expected} is"
            )
            return f"{missing} missing from the chain (deleted)"
        if record.prev_hash != self.prev:
            return (
                f"record {record.seq} does not link to record {record.seq - 1} "
                "(a record was deleted, inserted or reordered)"
            )
        if not hmac.compare_digest(link_mac(self.key, record), record.hash):
            return f"record {record.seq} does not match its HMAC (altered, or forged without the audit key)"
        self.prev, self.expected, self.count = record.hash, self.expected + 1, self.count + 1
        if record.seq in self.wanted:
            self.seen[record.seq] = record.hash
        return None


def verify(
    key: bytes,
    records: Iterable[AuditRecord],
    checkpoints: Iterable[dict[str, Any]] = (),
    anchor: Head | None = None,
) -> Verification:
    """Walk ``records`` (ascending ``seq``), then hold the chain against each signed checkpoint and the anchor."""
    checkpoints = list(checkpoints)
    walk = _Walk(key, {int(c.get("head_seq", 0)) for c in checkpoints} | ({anchor.seq} if anchor else set()))
    for record in records:
        problem = walk.feed(record)
        if problem is not None:
            return Verification(False, walk.count, walk.expected - 1, walk.prev, walk.expected, problem, anchor)
    for checkpoint in checkpoints:
        problem = _against_checkpoint(key, checkpoint, walk)
        if problem is not None:
            return Verification(False, walk.count, walk.expected - 1, walk.prev, walk.count + 1, problem, anchor)
    problem = None if anchor is None else _against_head(anchor, f"the anchor of {anchor.time}", walk)
    if problem is not None:
        return Verification(False, walk.count, walk.expected - 1, walk.prev, walk.count + 1, problem, anchor)
    return Verification(True, walk.count, walk.expected - 1, walk.prev, anchor=anchor)


def verify_extension(key: bytes, records: Iterable[AuditRecord], anchor: Head) -> str | None:
    """Whether ``records`` (every record after ``anchor.seq``, ascending) extend the anchored head soundly.

    Only the part written since the anchor is walked, so a new anchor can be written every few
    seconds without re-reading the whole chain; the caller checks the anchored record itself.
    """
    walk = _Walk(key, set(), after=anchor.seq, prev=anchor.hash)
    for record in records:
        problem = walk.feed(record)
        if problem is not None:
            return problem
    return None


def _against_checkpoint(key: bytes, checkpoint: dict[str, Any], walk: _Walk) -> str | None:
    if not verify_checkpoint_signature(key, checkpoint):
        return "the checkpoint's signature is invalid (altered checkpoint, or made with another audit key)"
    head = Head(int(checkpoint["head_seq"]), str(checkpoint["head_hash"]), str(checkpoint["time"]))
    return _against_head(head, f"the checkpoint of {head.time}", walk)


def _against_head(head: Head, source: str, walk: _Walk) -> str | None:
    if head.seq > walk.count:
        missing = f"record {head.seq} is" if head.seq == walk.count + 1 else f"records {walk.count + 1}-{head.seq} are"
        return (
            f"the chain was truncated: {missing} missing ({source} covers {head.seq} records, "
            f"the chain now has {walk.count}; the newest were deleted, or records were removed and the rest re-signed)"
        )
    if head.seq and walk.seen.get(head.seq) != head.hash:
        return f"record {head.seq} differs from {source} (the chain was rewritten and re-signed)"
    return None


def make_checkpoint(key: bytes, key_id: str, head_seq: int, head_hash: str, time: str) -> dict[str, Any]:
    """A signed statement "the chain had ``head_seq`` records ending in ``head_hash`` at ``time``"."""
    body = {
        "format": CHECKPOINT_FORMAT,
        "count": head_seq,
        "head_seq": head_seq,
        "head_hash": head_hash,
        "time": time,
        "key_id": key_id,
    }
    return body | {"signature": hmac.new(key, canonical(body), hashlib.sha256).hexdigest()}


def verify_checkpoint_signature(key: bytes, checkpoint: dict[str, Any]) -> bool:
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    expected = hmac.new(key, canonical(body), hashlib.sha256).hexdigest()
    return body.get("format") == CHECKPOINT_FORMAT and hmac.compare_digest(
        expected, str(checkpoint.get("signature", ""))
    )

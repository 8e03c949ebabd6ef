"""Retention: delete what has outlived its period, unless a legal hold covers it (``policies/retention.json``).

A document's period is the shorter of its collection's and its classification's (``null`` = no
limit; ``default_days`` when neither names one), counted from its upload. Each expired document is
erased like any other (receipt, crypto-shredding) and audited as ``retention.deleted`` by the
``retention`` system actor; documents held back by a hold are reported, not touched.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from ingest.audit.trail import Actor
from ingest.erasure import ErasureReceipt, erase_document, vacuum_index
from ingest.errors import NotFound
from ingest.policy_data import PolicyError, load_policy_file
from ingest.store.models import Document

if TYPE_CHECKING:
    from ingest.runtime import Components

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LegalHold:
    id: str
    reason: str
    tenant: str | None = None
    collections: tuple[str, ...] = ()
    document_ids: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    def covers(self, document: Document) -> bool:
        if self.tenant is not None and document.tenant != self.tenant:
            return False
        meta = document.metadata_dict
        return (
            document.collection in self.collections
            or document.id in self.document_ids
            or (bool(self.metadata) and all(meta.get(k) == v for k, v in self.metadata.items()))
        )


@dataclass(frozen=True)
class RetentionPolicy:
    default_days: float | None
    classifications: dict[str, float | None]
    collections: dict[str, float | None]
    holds: tuple[LegalHold, ...]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RetentionPolicy:
        """:raises PolicyError: a period that is not a non-negative number, or a hold that selects nothing."""
        holds = tuple(_hold(h) for h in data.get("legal_holds") or [])
        return cls(
            _days(data.get("default_days"), "default_days"),
            {k: _days(v, f"classifications.{k}") for k, v in (data.get("classifications") or {}).items()},
            {k: _days(v, f"collections.{k}") for k, v in (data.get("collections") or {}).items()},
            holds,
        )

    def period(self, document: Document) -> timedelta | None:
        candidates = [
            d
            for d in (self.collections.get(document.collection), self.classifications.get(document.classification))
            if d is not None
        ]
        days = min(candidates) if candidates else self.default_days
        return None if days is None else timedelta(days=days)

    def hold_on(self, document: Document) -> LegalHold | None:
        return next((h for h in self.holds if h.covers(document)), None)


def _days(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or value < 0:
        raise PolicyError(f"retention.json: {where} must be a number of days (or null for no limit)")
    return float(value)


def _hold(raw: Any) -> LegalHold:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise PolicyError("retention.json: every legal hold needs an 'id'")
    hold = LegalHold(
        id=str(raw["id"]),
        reason=str(raw.get("reason", "")),
        tenant=raw.get("tenant"),
        collections=tuple(raw.get("collections") or ()),
        document_ids=tuple(raw.get("document_ids") or ()),
        metadata=dict(raw.get("metadata") or {}),
    )
    if not (hold.collections or hold.document_ids or hold.metadata):
        raise PolicyError(f"retention.json: hold {hold.id!r} must select collections, document_ids or metadata")
    return hold


@dataclass
class RetentionReport:
    checked: int = 0
    receipts: list[ErasureReceipt] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # document id -> hold id


def load_retention_policy(components: Components) -> RetentionPolicy:
    return RetentionPolicy.from_data(load_policy_file(components.settings, "retention.json"))


def run_retention(
    components: Components, now: datetime | None = None, policy: RetentionPolicy | None = None
) -> RetentionReport:
    """Erase every expired document not under a legal hold; safe to run from several processes."""
    policy = policy or load_retention_policy(components)
    now = now or datetime.now(UTC)
    report = RetentionReport()
    with Session(components.engine) as session:
        documents = list(session.exec(select(Document)).all())
    for document in documents:
        report.checked += 1
        period = policy.period(document)
        created = document.created_at if document.created_at.tzinfo else document.created_at.replace(tzinfo=UTC)
        if period is None or created + period > now:
            continue
        hold = policy.hold_on(document)
        if hold is not None:
            report.held[document.id] = hold.id
            continue
        try:
            report.receipts.append(
                erase_document(
                    components,
                    Actor.system(document.tenant, "retention"),
                    document.id,
                    action="retention.deleted",
                    vacuum=False,
                )
            )
        except NotFound:  # erased meanwhile by someone else
            continue
    if report.receipts:
        vacuum_index(components)  # once for the whole sweep: each vacuum rebuilds the segments it touches
    log.info("retention.run checked=%d deleted=%d held=%d", report.checked, len(report.receipts), len(report.held))
    return report


class RetentionScheduler:
    """Runs :func:`run_retention` every ``interval_s`` seconds in a daemon thread (the service's schedule)."""

    def __init__(self, components: Components, interval_s: float) -> None:
        self._components = components
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="enclave-retention", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                run_retention(self._components)
                self.runs += 1
            except Exception:  # noqa: BLE001 - the schedule must survive one failed run; the next one retries
                log.exception("retention.run_failed")

"""Writing and reading the audit trail.

Writers open :meth:`AuditTrail.transaction`: the chain lock is taken first, the caller makes its
change in the same session and appends its record, and both commit together — or neither does,
and the caller gets :class:`AuditUnavailable` (HTTP 503). Nothing here ever stores document text;
a query is stored only sealed under its tenant's key.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from ingest import telemetry
from ingest.audit.anchor import AnchorLog
from ingest.audit.chain import GENESIS, Head, Verification, link_mac, make_checkpoint, verify, verify_extension
from ingest.audit.lock import ChainLock
from ingest.errors import EnclaveError, ServiceUnavailable
from ingest.keys.crypto import open_text, seal_text
from ingest.keys.keyring import AUDIT_KEY_ID, KeyRing
from ingest.store.compliance_models import AuditRecord, iso_time
from ingest.store.db import session_scope

log = logging.getLogger(__name__)
PAGE = 1000


class AuditUnavailable(ServiceUnavailable):
    code = "audit_unavailable"


@dataclass(frozen=True)
class Actor:
    """Who did it, from where: the principal plus the request's id and client address."""

    tenant: str
    subject: str
    roles: tuple[str, ...] = ()
    auth_method: str = "system"
    request_id: str | None = None
    client: str | None = None

    @classmethod
    def system(cls, tenant: str, name: str = "system") -> Actor:
        return cls(tenant=tenant, subject=name, roles=("system",), auth_method="system")


@dataclass
class AuditEvent:
    """What a caller records; ``query`` is sealed before it is stored, never kept in clear."""

    actor: Actor
    action: str
    outcome: str = "ok"
    document_ids: Sequence[str] = ()
    chunk_ids: Sequence[str] = ()
    model: str | None = None
    decision: str | None = None
    decision_reason: str | None = None
    query: str | None = None
    latency_ms: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditFilter:
    tenant: str
    subject: str | None = None
    document_id: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 100
    offset: int = 0


class AuditSession:
    """One audited transaction: the caller's session plus :meth:`append` for its record(s)."""

    def __init__(self, trail: AuditTrail, session: Session) -> None:
        self.trail = trail
        self.session = session
        self.records: list[AuditRecord] = []

    def append(self, event: AuditEvent) -> AuditRecord:
        """Add the next link of the chain to this transaction. :raises AuditUnavailable:"""
        try:
            record = self.trail.build(self.session, event)
            self.session.add(record)
            self.session.flush()
        except (SQLAlchemyError, OSError, EnclaveError) as exc:
            raise AuditUnavailable(_unavailable(exc)) from exc
        self.records.append(record)
        return record


def _unavailable(exc: Exception) -> str:
    log.error("audit.write_failed type=%s", type(exc).__name__)
    telemetry.record_audit_write_failure(type(exc).__name__)
    return (
        "the audit trail cannot be written, so the request was refused (fail closed); the operator must check the store"
    )


class AuditTrail:
    """The append-only chain over the relational store, keyed by the key ring's audit key."""

    def __init__(self, engine: Engine, keyring: KeyRing, anchors: AnchorLog | None = None) -> None:
        self._engine = engine
        self._keyring = keyring
        self._lock = ChainLock(engine)
        self.anchors = anchors  # where the head is anchored outside the data directory (None: nowhere)
        self._listeners: list[Callable[[int], None]] = []

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(number of records)`` after each committed append (it must be quick and not raise)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[int], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    @contextmanager
    def transaction(self) -> Iterator[AuditSession]:
        """Lock the chain, yield a session for the change and its record(s), commit both together.

        :raises AuditUnavailable: the lock, the append or the commit failed; nothing was changed.
        """
        in_body = False
        try:
            with self._lock.process(), Session(self._engine, expire_on_commit=False) as session:
                self._lock.begin(session)
                try:
                    in_body = True
                    audited = AuditSession(self, session)
                    yield audited
                    in_body = False
                except BaseException:
                    session.rollback()
                    raise
                session.commit()
        except (SQLAlchemyError, OSError) as exc:
            if in_body:  # the caller's own change failed: not an audit problem, let it through
                raise
            raise AuditUnavailable(_unavailable(exc)) from exc
        for listener in list(self._listeners):
            listener(len(audited.records))

    def record(self, event: AuditEvent) -> AuditRecord:
        """Append one record in its own transaction (queries, searches). :raises AuditUnavailable:"""
        if event.query is not None:
            self._keyring.tenant_key(event.actor.tenant)  # create it before the write lock is taken
        with self.transaction() as audited:
            return audited.append(event)

    def build(self, session: Session, event: AuditEvent) -> AuditRecord:
        head = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
        actor = event.actor
        record = AuditRecord(
            seq=(head.seq + 1) if head else 1,
            time=iso_time(),
            tenant=actor.tenant,
            subject=actor.subject,
            roles_json=json.dumps(sorted(actor.roles)),
            auth_method=actor.auth_method,
            action=event.action,
            outcome=event.outcome,
            request_id=actor.request_id,
            client=actor.client,
            document_ids_json=json.dumps(list(dict.fromkeys(event.document_ids))),
            chunk_ids_json=json.dumps(list(dict.fromkeys(event.chunk_ids))),
            model=event.model,
            decision=event.decision,
            decision_reason=event.decision_reason,
            query_ciphertext=self._seal_query(actor.tenant, event.query),
            latency_ms=event.latency_ms,
            detail_json=json.dumps(event.detail, sort_keys=True),
            key_id=AUDIT_KEY_ID,
            prev_hash=head.hash if head else GENESIS,
            hash="",
        )
        record.hash = link_mac(self._keyring.audit_key(), record)
        return record

    def _seal_query(self, tenant: str, query: str | None) -> str | None:
        if query is None:
            return None
        return seal_text(self._keyring.tenant_key(tenant), query, f"audit.query:{tenant}".encode())

    def reveal_query(self, record: AuditRecord) -> str | None:
        """The query in clear for an auditor of its tenant; None when absent or its tenant was erased."""
        if record.query_ciphertext is None:
            return None
        try:
            key = self._keyring.tenant_key_if_exists(record.tenant)
            return (
                None
                if key is None
                else open_text(key, record.query_ciphertext, f"audit.query:{record.tenant}".encode())
            )
        except EnclaveError:
            return None

    # -- reading --------------------------------------------------------------------------------
    def search(self, flt: AuditFilter) -> list[AuditRecord]:
        query = select(AuditRecord).where(AuditRecord.tenant == flt.tenant)
        if flt.subject:
            query = query.where(AuditRecord.subject == flt.subject)
        if flt.document_id:
            query = query.where(col(AuditRecord.document_ids_json).contains(json.dumps(flt.document_id)))
        if flt.action:
            query = query.where(AuditRecord.action == flt.action)
        if flt.since:
            query = query.where(col(AuditRecord.time) >= flt.since)
        if flt.until:
            query = query.where(col(AuditRecord.time) <= flt.until)
        with session_scope(self._engine) as session:
            return list(session.exec(query.order_by(col(AuditRecord.seq)).offset(flt.offset).limit(flt.limit)).all())

    def records(self, *, since: str | None = None, after: int = 0) -> Iterator[AuditRecord]:
        """Every record (after ``seq`` ``after``) in chain order, read a page at a time."""
        last = after
        while True:
            with session_scope(self._engine) as session:
                query = select(AuditRecord).where(col(AuditRecord.seq) > last)
                if since:
                    query = query.where(col(AuditRecord.time) >= since)
                page = list(session.exec(query.order_by(col(AuditRecord.seq)).limit(PAGE)).all())
            yield from page
            if len(page) < PAGE:
                return
            last = page[-1].seq

    def verify(self, checkpoints: Sequence[dict[str, Any]] = ()) -> Verification:
        """Walk the chain; hold it against ``checkpoints`` and, when anchoring is configured, the highest anchor."""
        reading = self.anchors.read() if self.anchors is not None else None
        result = verify(self._keyring.audit_key(), self.records(), checkpoints, reading.latest if reading else None)
        if reading is not None and reading.problem is not None:  # a forged anchor is evidence in its own right
            problem = reading.problem if result.ok else f"{result.problem}; and {reading.problem}"
            return dataclasses.replace(result, ok=False, problem=problem)
        return result

    def head(self) -> Head:
        """The newest record's ``seq`` and hash now (``0`` and the genesis hash for an empty chain)."""
        with session_scope(self._engine) as session:
            head = session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1)).first()
        return Head(head.seq, head.hash, iso_time()) if head else Head(0, GENESIS, iso_time())

    def extension_problem(self, anchor: Head | None) -> str | None:
        """Why the chain now is not ``anchor``'s chain plus sound new records; None when it is.

        Without an anchor the whole chain is verified; with one, the anchored record is looked up and
        only the records after it are walked.
        """
        if anchor is None:
            return self.verify().problem
        if anchor.seq:
            with session_scope(self._engine) as session:
                anchored = session.get(AuditRecord, anchor.seq)
            if anchored is None or anchored.hash != anchor.hash:
                now = self.head().seq
                return (
                    f"records {now + 1}-{anchor.seq} are missing since the anchor of {anchor.time} (truncated)"
                    if now < anchor.seq
                    else f"record {anchor.seq} differs from the anchor of {anchor.time} (rewritten and re-signed)"
                )
        return verify_extension(self._keyring.audit_key(), self.records(after=anchor.seq), anchor)

    def checkpoint(self) -> dict[str, Any]:
        """A signed (count, head hash) statement to keep outside the database."""
        head = self.head()
        return make_checkpoint(self._keyring.audit_key(), AUDIT_KEY_ID, head.seq, head.hash, head.time)


def export_line(record: AuditRecord) -> str:
    """One JSON line for a SIEM: the stored columns exactly, so the chain can be re-verified downstream."""
    return json.dumps(record.model_dump(), sort_keys=True, ensure_ascii=False)

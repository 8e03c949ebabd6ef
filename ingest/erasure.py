"""Erasure: a document, every document of a data subject, or a whole tenant — really gone.

One audited transaction removes the rows (document, chunks, jobs) and destroys the keys, so from
its commit on the data is unreadable everywhere (crypto-shredding); then the index points, the
originals and any cached derivatives are removed physically and checked. The caller gets a
receipt: what was removed, content hashes, counts, time, and the receipt's own SHA-256, which the
audit record carries too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, func, select

from ingest.audit.trail import Actor, AuditEvent
from ingest.backup.ledger import LedgerEntry, erasure_ledger
from ingest.blobs import blob_key
from ingest.errors import NotFound
from ingest.index.port import AccessFilter
from ingest.store.compliance_models import iso_time
from ingest.store.models import Chunk, Document, Job, new_id

if TYPE_CHECKING:
    from ingest.runtime import Components

log = logging.getLogger(__name__)


class ErasedDocument(BaseModel):
    document_id: str
    collection: str
    classification: str
    content_sha256: str = Field(
        description="SHA-256 of the original upload (the content is gone; the hash proves which)"
    )
    created_at: str
    chunk_rows: int
    index_points: int
    jobs: int
    originals: list[str] = Field(description="stored originals removed: the document's and its versions' blob keys")
    key_destroyed: bool


class ErasureVerification(BaseModel):
    index_points_remaining: int
    originals_remaining: int


class ErasureReceipt(BaseModel):
    """Proof of an erasure. ``receipt_sha256`` covers every field above it; the audit record holds it too."""

    receipt_id: str
    scope: str = Field(description="document | subject | tenant | retention")
    target: str
    tenant: str
    requested_by: str
    erased_at: str
    documents: list[ErasedDocument]
    keys_destroyed: int
    receipt_sha256: str = ""
    audit_seq: int | None = None
    verification: ErasureVerification | None = None

    def digest(self) -> str:
        body = self.model_dump(exclude={"receipt_sha256", "audit_seq", "verification"})
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def erase_document(
    components: Components,
    actor: Actor,
    document_id: str,
    *,
    action: str = "document.deleted",
    vacuum: bool = True,
) -> ErasureReceipt:
    """``vacuum=False`` leaves the index vacuum to the caller (:func:`vacuum_index`, once for many erasures).

    :raises NotFound: no such document in the actor's tenant (another tenant's looks the same).
    """
    with Session(components.engine) as session:
        document = session.get(Document, document_id)
    if document is None or document.tenant != actor.tenant:
        raise NotFound(f"document {document_id} not found")
    scope = "retention" if action == "retention.deleted" else "document"
    return _erase(components, actor, [document], scope, document_id, action, vacuum=vacuum)


def erase_subject(components: Components, actor: Actor, subject_id: str) -> ErasureReceipt:
    """Every document of the actor's tenant whose metadata names ``subject_id`` (GDPR Art. 17)."""
    field_name = components.settings.compliance.subject_field
    with Session(components.engine) as session:
        documents = [
            d
            for d in session.exec(select(Document).where(Document.tenant == actor.tenant)).all()
            if _names_subject(d.metadata_dict.get(field_name), subject_id)
        ]
    return _erase(components, actor, documents, "subject", subject_id, "erasure.subject")


def erase_tenant(components: Components, actor: Actor) -> ErasureReceipt:
    """All of the actor's tenant: documents, keys (tenant key included), pseudonym key with it."""
    with Session(components.engine) as session:
        documents = list(session.exec(select(Document).where(Document.tenant == actor.tenant)).all())
    return _erase(components, actor, documents, "tenant", actor.tenant, "erasure.tenant")


def _names_subject(value: object, subject_id: str) -> bool:
    return value == subject_id or (isinstance(value, list) and subject_id in value)


def _erase(
    components: Components,
    actor: Actor,
    documents: list[Document],
    scope: str,
    target: str,
    action: str,
    *,
    vacuum: bool = True,
) -> ErasureReceipt:
    documents = _with_attachments(components, documents)
    points = {d.id: components.index.count(AccessFilter(tenant=actor.tenant, document_ids=(d.id,))) for d in documents}
    with components.compliance.audit.transaction() as tx:
        _secure_delete(tx.session)
        erased = [_remove_rows(tx.session, components, d, points[d.id]) for d in documents]
        keys = sum(e.key_destroyed for e in erased)
        if scope == "tenant":
            keys += components.compliance.keyring.destroy_tenant_keys(tx.session, actor.tenant)
        receipt = _receipt(actor, scope, target, erased, keys)
        _record_in_ledger(components, receipt)  # before the commit: a restore must never resurrect it
        record = tx.append(
            AuditEvent(
                actor,
                action,
                document_ids=[e.document_id for e in erased],
                detail={
                    "receipt_id": receipt.receipt_id,
                    "receipt_sha256": receipt.receipt_sha256,
                    "scope": scope,
                    "documents": len(erased),
                    "keys_destroyed": keys,
                },
            )
        )
    receipt.audit_seq = record.seq
    receipt.verification = _purge(components, actor.tenant, erased, vacuum=vacuum)
    log.info("erasure.done scope=%s documents=%d receipt=%s", scope, len(erased), receipt.receipt_id)
    return receipt


def _record_in_ledger(components: Components, receipt: ErasureReceipt) -> None:
    """Append the erasure to the ledger outside the data directory (README "Backup and restore")."""
    ledger = erasure_ledger(components.settings)
    if ledger is not None:
        ids = [d.document_id for d in receipt.documents]
        ledger.append(
            LedgerEntry(
                receipt.erased_at, receipt.scope, receipt.tenant, ids, receipt.receipt_id, receipt.receipt_sha256
            )
        )


def _remove_rows(session: Session, components: Components, document: Document, index_points: int) -> ErasedDocument:
    chunks = session.exec(select(func.count()).select_from(Chunk).where(Chunk.document_id == document.id)).one()
    jobs = list(session.exec(select(Job.version).where(Job.document_id == document.id)).all())
    versions = set(jobs) | {document.version}
    session.execute(delete(Chunk).where(col(Chunk.document_id) == document.id))
    session.execute(delete(Job).where(col(Job.document_id) == document.id))
    session.execute(delete(Document).where(col(Document.id) == document.id))
    destroyed = components.compliance.keyring.destroy_document_keys(session, [document.id]) > 0
    return ErasedDocument(
        document_id=document.id,
        collection=document.collection,
        classification=document.classification,
        content_sha256=document.content_hash,
        created_at=iso_time(_utc(document.created_at)),
        chunk_rows=int(chunks),
        index_points=index_points,
        jobs=len(jobs),
        originals=[blob_key(document.id, v) for v in sorted(versions)],
        key_destroyed=destroyed,
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _receipt(actor: Actor, scope: str, target: str, erased: list[ErasedDocument], keys: int) -> ErasureReceipt:
    receipt = ErasureReceipt(
        receipt_id=new_id(),
        scope=scope,
        target=target,
        tenant=actor.tenant,
        requested_by=actor.subject,
        erased_at=iso_time(),
        documents=erased,
        keys_destroyed=keys,
    )
    receipt.receipt_sha256 = receipt.digest()
    return receipt


def _with_attachments(components: Components, documents: list[Document]) -> list[Document]:
    """The documents plus everything derived from them as child documents (an e-mail's attachments), recursively."""
    found = {d.id: d for d in documents}
    frontier = list(found)
    with Session(components.engine) as session:
        while frontier:
            children = session.exec(select(Document).where(col(Document.parent_id).in_(frontier))).all()
            frontier = [c.id for c in children if c.id not in found]
            found.update((c.id, c) for c in children)
    return list(found.values())


def vacuum_index(components: Components) -> None:
    """Rewrite the index segments that held erased points (their term ids, vectors and sealed payload go).

    Costs a rebuild of each such segment (seconds at 10k chunks; see README "Performance"), so a
    batch of erasures (a retention sweep) calls it once at the end.
    """
    vacuum = getattr(components.index, "optimize", None)
    if vacuum is not None:
        vacuum()


def _purge(
    components: Components, tenant: str, erased: list[ErasedDocument], *, vacuum: bool = True
) -> ErasureVerification:
    """Physical removal after the commit; the data is already unreadable, this removes the ciphertext."""
    document_ids = [e.document_id for e in erased]
    for item in erased:
        components.index.delete_document(tenant, item.document_id)
        for key in item.originals:
            components.blobs.delete(key)
    for hook in components.compliance.erasure_hooks:
        hook(tenant, document_ids)
    components.index.flush()
    if vacuum:
        vacuum_index(components)
    checkpoint_wal(components.engine)
    remaining = sum(components.index.count(AccessFilter(tenant=tenant, document_ids=(d,))) for d in document_ids)
    originals = sum(_blob_exists(components, key) for item in erased for key in item.originals)
    return ErasureVerification(index_points_remaining=remaining, originals_remaining=originals)


def _blob_exists(components: Components, key: str) -> bool:
    try:
        components.blobs.get(key)
    except FileNotFoundError:
        return False
    except Exception:  # noqa: BLE001 - present but unreadable (its key is gone) still counts as present
        return True
    return True


def _secure_delete(session: Session) -> None:
    """SQLite: overwrite deleted rows with zeros instead of leaving them in free pages."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("PRAGMA secure_delete=ON")


def checkpoint_wal(engine: Engine, *, vacuum: bool = False) -> None:
    """SQLite: fold the write-ahead log into the database and truncate it (old page images go)."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        if vacuum:
            conn.exec_driver_sql("VACUUM")
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))

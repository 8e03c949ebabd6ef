"""Documents: submit an upload, process its job, delete it — nothing half-written.

Order of writes on processing: chunks are upserted into the index under the document's new
version, then the relational rows are committed, then older versions are removed from the index.
A reader therefore sees the old version or the new one, never neither; a failure before the
commit removes whatever this attempt upserted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from sqlmodel import Session, col, delete, select

from ingest import telemetry
from ingest.audit.trail import Actor, AuditEvent
from ingest.chunking import ChunkSpan
from ingest.erasure import ErasureReceipt, erase_document
from ingest.errors import DocumentTooLarge, EmptyDocument, EnclaveError, InvalidRequest, NotFound
from ingest.index.port import ChunkRecord
from ingest.jobs import claim_next, fail, finish, heartbeat
from ingest.parsing.port import ParsedDocument
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Chunk, Document, DocumentStatus, Job, JobStatus, utcnow

log = logging.getLogger(__name__)
CHUNK_NAMESPACE = uuid.UUID("5b0c1f4e-7d1a-4f0e-9a51-6c2f3e8d9a10")
EMBED_BATCH = 64
HEADER_TOKENS = 40


@dataclass(frozen=True)
class Upload:
    """An upload as the API or CLI received it."""

    filename: str
    data: bytes
    tenant: str
    collection: str
    title: str | None = None
    classification: str = "internal"
    acl: dict[str, list[str]] = field(default_factory=lambda: {"groups": [], "users": []})
    metadata: dict[str, Any] = field(default_factory=dict)
    actor: Actor | None = None  # who uploaded (audited); None: a local system actor of the tenant


@dataclass(frozen=True)
class Submission:
    document: Document
    job: Job | None
    duplicate: bool


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_id(document_id: str, version: int, ordinal: int) -> str:
    """Deterministic, so a retried job overwrites its own earlier points instead of duplicating them."""
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{document_id}:{version}:{ordinal}"))


def submit(components: Components, upload: Upload) -> Submission:
    """Store the original and queue an ingest job; the same bytes in the same collection are deduplicated.

    :raises DocumentTooLarge: over ``max_upload_bytes``.
    :raises EmptyDocument: zero bytes.
    """
    _check_upload(components, upload)
    digest = content_hash(upload.data)
    document = _new_document(upload, digest)
    keyring = components.compliance.keyring
    keyring.tenant_key(upload.tenant)
    try:
        with components.compliance.audit.transaction() as tx:  # document, job, key and audit record commit together
            existing = _find_duplicate(tx.session, upload, digest)
            if existing is not None:
                tx.append(_ingest_event(upload, existing, "duplicate"))
                return Submission(existing, None, duplicate=True)
            keyring.create_document_key(upload.tenant, document.id, tx.session)
            components.blobs.put(document.id, upload.data)
            job = Job(document_id=document.id, max_attempts=components.settings.job_max_attempts)
            tx.session.add(document)
            tx.session.flush()
            tx.session.add(job)
            tx.append(_ingest_event(upload, document, "accepted"))
    except BaseException:
        keyring.forget_document_key(document.id)
        components.blobs.delete(document.id)
        raise
    return Submission(document, job, duplicate=False)


def _ingest_event(upload: Upload, document: Document, outcome: str) -> AuditEvent:
    actor = upload.actor or Actor.system(upload.tenant, "local")
    return AuditEvent(actor, "ingest.requested", outcome, document_ids=[document.id],
                      detail={"collection": upload.collection, "classification": upload.classification, "bytes": len(upload.data)})


def _check_upload(components: Components, upload: Upload) -> None:
    limit = components.settings.max_upload_bytes
    if len(upload.data) > limit:
        raise DocumentTooLarge(f"file is {len(upload.data)} bytes; the limit is {limit} bytes (ENCLAVE_MAX_UPLOAD_BYTES)", param="file")
    if not upload.data:
        raise EmptyDocument("the file is empty; upload a file with content", param="file")
    if upload.classification not in {"public", "internal", "confidential", "phi", "privileged"}:
        raise InvalidRequest("classification must be one of public, internal, confidential, phi, privileged", param="classification")


def _find_duplicate(session: Session, upload: Upload, digest: str) -> Document | None:
    return session.exec(
        select(Document).where(
            Document.tenant == upload.tenant,
            Document.collection == upload.collection,
            Document.content_hash == digest,
            col(Document.status) != DocumentStatus.failed,
        )
    ).first()


def _new_document(upload: Upload, digest: str) -> Document:
    name = PurePath(upload.filename).name or "upload"
    return Document(
        tenant=upload.tenant,
        collection=upload.collection,
        title=upload.title or name,
        filename=name,
        content_hash=digest,
        size_bytes=len(upload.data),
        classification=upload.classification,
        acl_json=json.dumps({"groups": sorted(set(upload.acl.get("groups", []))), "users": sorted(set(upload.acl.get("users", [])))}),
        metadata_json=json.dumps(upload.metadata),
    )


def process_next(components: Components, worker: str) -> Job | None:
    """Claim and process one job; returns it (reloaded) or None when the queue is empty."""
    job = claim_next(components.engine, worker)
    if job is None:
        return None
    process_job(components, job)
    with session_scope(components.engine) as session:
        return session.get(Job, job.id)


@telemetry.traced("ingest.job")
def process_job(components: Components, job: Job, on_progress: Callable[[int, int], None] | None = None) -> None:
    """Run one claimed job to done or failed (with retry for transient errors)."""
    with session_scope(components.engine) as session:
        document = session.get(Document, job.document_id)
        if document is None:
            fail(components.engine, job, "the document was deleted before it was processed", "not_found", retryable=False)
            return
        session.execute(_set_status(document.id, DocumentStatus.processing))
    try:
        count = _ingest(components, job, document, on_progress)
    except EnclaveError as exc:
        _on_failure(components, job, document, exc.message, exc.code, exc.retryable)
    except Exception as exc:  # noqa: BLE001 - unexpected failures are retried, then reported
        log.exception("ingest failed job=%s", job.id)
        _on_failure(components, job, document, f"internal error while ingesting: {type(exc).__name__}", "internal_error", True)
    else:
        finish(components.engine, job.id)
        telemetry.document_finished("ready", count)
        log.info("ingested document=%s chunks=%d", document.id, count)


def _set_status(document_id: str, status: DocumentStatus, **values: Any) -> Any:
    from sqlalchemy import update

    return update(Document).where(col(Document.id) == document_id).values(status=status, updated_at=utcnow(), **values)


def _ingest(components: Components, job: Job, document: Document, on_progress: Callable[[int, int], None] | None) -> int:
    telemetry.annotate(document_id=document.id, job_id=job.id, tenant=document.tenant, bytes=document.size_bytes)
    data = components.blobs.get(document.id)
    with telemetry.span("ingest.parse") as parse_span:
        parsed = components.parser.parse(data, document.filename)
        parse_span.set_attributes({"pages": parsed.pages, "mime": parsed.mime})
    parsed, _ = components.compliance.redact(parsed, document.tenant, document.classification)
    with telemetry.span("ingest.chunk") as chunk_span:
        spans = components.chunker.chunk(parsed)
        chunk_span.set_attribute("chunks", len(spans))
    if not spans:
        raise EmptyDocument("no extractable text in this document; upload a text-bearing copy")
    heartbeat(components.engine, job.id, pages=parsed.pages)
    records = _records(document, parsed, spans)
    header = context_header(components, records[0].title, parsed)
    _embed_and_upsert(components, job, records, header, on_progress)
    _commit_ready(components, document, parsed, spans)
    components.index.delete_document(document.tenant, document.id, keep_version=document.version)
    return len(spans)


def _records(document: Document, parsed: ParsedDocument, spans: list[ChunkSpan]) -> list[ChunkRecord]:
    acl = document.acl
    title = document.title if document.title != document.filename or not parsed.title else parsed.title
    return [
        ChunkRecord(
            id=chunk_id(document.id, document.version, span.ordinal),
            tenant=document.tenant,
            collection=document.collection,
            document_id=document.id,
            title=title,
            text=span.text,
            page=span.page,
            page_end=span.page_end,
            start=span.start,
            end=span.end,
            ordinal=span.ordinal,
            version=document.version,
            classification=document.classification,
            acl_groups=tuple(acl.get("groups", [])),
            acl_users=tuple(acl.get("users", [])),
        )
        for span in spans
    ]


def context_header(components: Components, title: str, parsed: ParsedDocument) -> str:
    """The document's title and opening words, embedded with every chunk but never stored in it.

    A question usually names the document ("the affiliate agreement between Birch and Mount
    Kowledge") and the clause ("which law governs"). With the header in every chunk's vectors
    the naming part matches all of the document's chunks alike, so the clause part decides.
    """
    name = PurePath(title).stem.replace("_", " ")
    opening = parsed.text[: parsed.elements[0].end + 400] if parsed.elements else ""
    offsets = components.chunker.token_offsets(opening)
    cut = offsets[HEADER_TOKENS - 1][1] if len(offsets) >= HEADER_TOKENS else len(opening)
    return f"{name}\n{' '.join(opening[:cut].split())}"


def _embed_and_upsert(
    components: Components, job: Job, records: list[ChunkRecord], header: str, on_progress: Callable[[int, int], None] | None
) -> None:
    done = 0
    for i in range(0, len(records), EMBED_BATCH):
        batch = records[i : i + EMBED_BATCH]
        texts = [f"{header}\n{r.text}" for r in batch]
        with telemetry.span("ingest.embed", chunks=len(batch)):
            dense = components.embedder.embed_passages(texts)
            sparse = [components.sparse.embed_passage(t) for t in texts]
        with telemetry.span("ingest.upsert", chunks=len(batch)):
            components.index.upsert(batch, dense, sparse)
        done += len(batch)
        heartbeat(components.engine, job.id, chunks=done)
        if on_progress is not None:
            on_progress(done, len(records))


def _commit_ready(components: Components, document: Document, parsed: ParsedDocument, spans: list[ChunkSpan]) -> None:
    with session_scope(components.engine) as session:
        session.execute(delete(Chunk).where(col(Chunk.document_id) == document.id))
        session.add_all(
            Chunk(
                id=chunk_id(document.id, document.version, s.ordinal),
                document_id=document.id,
                ordinal=s.ordinal,
                page=s.page,
                page_end=s.page_end,
                start=s.start,
                end=s.end,
                token_count=s.token_count,
            )
            for s in spans
        )
        title = parsed.title if document.title == document.filename and parsed.title else document.title
        session.execute(
            _set_status(document.id, DocumentStatus.ready, pages=parsed.pages, chunk_count=len(spans), mime=parsed.mime, title=title[:512], error=None, error_code=None)
        )


def _on_failure(components: Components, job: Job, document: Document, message: str, code: str, retryable: bool) -> None:
    components.index.delete_document(document.tenant, document.id, keep_version=None if document.chunk_count == 0 else document.version - 1)
    requeued = fail(components.engine, job, message, code, retryable=retryable)
    telemetry.annotate(error_code=code, retried=requeued)
    telemetry.document_finished("retried" if requeued else "failed")
    if not requeued:
        with session_scope(components.engine) as session:
            session.execute(_set_status(document.id, DocumentStatus.failed, error=message, error_code=code))


def delete_document(components: Components, tenant: str, document_id: str, actor: Actor | None = None) -> ErasureReceipt:
    """Erase a document everywhere (index points, chunk rows, jobs, original, row, its key) and audit it.

    :raises NotFound: no such document in this tenant (also when it belongs to another tenant).
    """
    return erase_document(components, actor or Actor.system(tenant, "local"), document_id)


def get_document(components: Components, tenant: str, document_id: str) -> Document:
    """:raises NotFound: missing, or in another tenant (indistinguishable on purpose)."""
    with session_scope(components.engine) as session:
        document = session.get(Document, document_id)
        if document is None or document.tenant != tenant:
            raise NotFound(f"document {document_id} not found")
        return document


def latest_job(components: Components, document_id: str) -> Job | None:
    with session_scope(components.engine) as session:
        return session.exec(select(Job).where(Job.document_id == document_id).order_by(col(Job.created_at).desc())).first()


def list_documents(components: Components, tenant: str, collection: str | None = None, limit: int = 100, offset: int = 0) -> list[Document]:
    with session_scope(components.engine) as session:
        query = select(Document).where(Document.tenant == tenant)
        if collection is not None:
            query = query.where(Document.collection == collection)
        return list(session.exec(query.order_by(col(Document.created_at).desc()).offset(offset).limit(limit)).all())


def job_is_active(job: Job | None) -> bool:
    return job is not None and job.status in (JobStatus.queued, JobStatus.running)

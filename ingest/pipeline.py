"""Processing one ingest job, in three stages the batching worker can overlap across documents.

1. :func:`prepare` — parse (OCR where needed), redact, chunk, build the chunk records.
2. :func:`embed` — dense and BM25 vectors, in batches (possibly shared with other documents).
3. :func:`complete` — swap the new version into the index, commit the rows, queue attachments
   (:func:`complete_all` for several documents at once, with one index flush).

Nothing reaches the index before stage 3, and stage 3 replaces the document's chunks in one
step readers cannot split (:mod:`ingest.index.swap`). So a job that fails, or whose worker is
killed, at any point before it leaves the index exactly as it was: the old version (or nothing)
stays visible, never a part of the new one. Then the relational rows follow; if the worker dies
between the two, the requeued job redoes both (chunk ids are deterministic, so it overwrites).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlmodel import col, delete

from ingest import preamble, telemetry, titles, webhooks
from ingest.blobs import blob_key
from ingest.chunking import ChunkSpan, with_heading
from ingest.documents import EMBED_BATCH, Upload, chunk_id, context_header, embedding_text, submit
from ingest.errors import EmptyDocument, EnclaveError
from ingest.index.port import ChunkRecord, SparseVector
from ingest.index.swap import flushed_once, swap_version
from ingest.jobs import fail, finish_in, heartbeat
from ingest.parsing.port import Attachment, ParsedDocument
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Chunk, Document, DocumentStatus, Job, utcnow
from ingest.versions import live_version, ocr_flags, target_of

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass
class Prepared:
    """A job between its stages: the document now, as it will be, and its chunks with their vectors."""

    job: Job
    document: Document
    target: Document
    data: bytes
    parsed: ParsedDocument
    spans: list[ChunkSpan]
    records: list[ChunkRecord]
    texts: list[str]
    dense: list[list[float]] = field(default_factory=list)
    sparse: list[SparseVector] = field(default_factory=list)

    @property
    def embedded(self) -> bool:
        return len(self.dense) == len(self.records)


@telemetry.traced("ingest.job")
def run_job(components: Components, job: Job, on_progress: Progress | None = None) -> None:
    """Run one claimed job to done or failed (with retry for transient errors), stage after stage."""
    document = start(components, job)
    if document is None:
        return
    try:
        prepared = prepare(components, job, document)
        embed_prepared(components, prepared, on_progress)
        complete(components, prepared)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the job (see fail_job)
        fail_job(components, job, document, exc)


def embed_prepared(components: Components, prepared: Prepared, on_progress: Progress | None = None) -> None:
    """Dense and BM25 vectors of every chunk of ``prepared``, in batches, with a heartbeat after each."""
    for i in range(0, len(prepared.texts), EMBED_BATCH):
        dense, sparse = embed(components, prepared.texts[i : i + EMBED_BATCH])
        prepared.dense.extend(dense)
        prepared.sparse.extend(sparse)
        heartbeat(components.engine, prepared.job.id, chunks=len(prepared.dense))
        if on_progress is not None:
            on_progress(len(prepared.dense), len(prepared.records))


def start(components: Components, job: Job) -> Document | None:
    """Mark the job's document as processing; None (and the job failed) when it was deleted meanwhile."""
    with session_scope(components.engine) as session:
        document = session.get(Document, job.document_id)
        if document is None:
            fail(
                components.engine, job, "the document was deleted before it was processed", "not_found", retryable=False
            )
            return None
        session.execute(_set_status(document.id, DocumentStatus.processing))
    return document


def prepare(components: Components, job: Job, document: Document) -> Prepared:
    """Parse, redact and chunk the job's version of the document; nothing is written but progress.

    :raises IngestError: the document cannot be read (each with a message saying what to do).
    """
    target = target_of(document, job)
    telemetry.annotate(document_id=document.id, job_id=job.id, tenant=document.tenant, bytes=target.size_bytes)
    data = original(components, document.id, target.version)
    with telemetry.span("ingest.parse") as parse_span:
        parsed = components.parser.parse(data, target.filename)
        parse_span.set_attributes({"pages": parsed.pages, "mime": parsed.mime, "ocr_pages": parsed.ocr_pages})
    parsed, _ = components.compliance.redact(parsed, target.tenant, target.classification)
    with telemetry.span("ingest.chunk") as chunk_span:
        spans = components.chunker.chunk(parsed)
        chunk_span.set_attribute("chunks", len(spans))
    if not spans:
        raise EmptyDocument("no extractable text in this document; upload a text-bearing copy")
    heartbeat(components.engine, job.id, pages=parsed.pages)
    records = _records(target, parsed, spans, titles.chosen(components.compliance, target, parsed))
    header = context_header(components, records[0].title, parsed)  # the redacted title, as shown
    # the heading path ("12. MISCELLANEOUS > 12.3 Governing Law") is embedded with the clause, never stored in it
    texts = [embedding_text(header, with_heading(r.text, s.heading)) for r, s in zip(records, spans, strict=True)]
    return Prepared(job, document, target, data, parsed, spans, records, texts)


def original(components: Components, document_id: str, version: int) -> bytes:
    """The version's original; after it was promoted (a crash before the job finished) the main one."""
    try:
        return components.blobs.get(blob_key(document_id, version))
    except FileNotFoundError:
        if version <= 1:
            raise
        return components.blobs.get(document_id)


def embed(components: Components, texts: Sequence[str]) -> tuple[list[list[float]], list[SparseVector]]:
    """Dense and BM25 vectors of one batch of embedding texts (from one or several documents)."""
    with telemetry.span("ingest.embed", chunks=len(texts)):
        dense = components.embedder.embed_passages(texts)
        sparse = [components.sparse.embed_passage(text) for text in texts]
    return dense, sparse


def complete(components: Components, prepared: Prepared) -> int:
    """Swap the version into the index, commit its rows, queue its attachments, finish the job."""
    swap_in(components, prepared)
    return commit(components, prepared)


def complete_all(components: Components, group: Sequence[Prepared]) -> None:
    """:func:`complete` each document of ``group``, with one index flush for all of them.

    Every version is swapped in, the index is flushed once (:func:`ingest.index.swap.flushed_once`;
    on Qdrant Edge a flush costs about 21 ms, as much as embedding a short abstract), and only then
    are the rows committed: a document is never marked ready before its chunks are durable. Each
    document's failure is recorded on its own job; when the flush fails, every swapped one fails
    (and is retried), none committed.
    """
    if not group:
        return
    swapped: list[Prepared] = []
    try:
        with telemetry.span("ingest.flush", documents=len(group)), flushed_once(components.index):
            for prepared in group:
                try:
                    swap_in(components, prepared)
                except Exception as exc:  # noqa: BLE001 - recorded on the job by fail_job
                    fail_job(components, prepared.job, prepared.document, exc)
                else:
                    swapped.append(prepared)
    except Exception as exc:  # noqa: BLE001 - the flush failed: no swapped version is known durable
        for prepared in swapped:
            fail_job(components, prepared.job, prepared.document, exc)
        return
    for prepared in swapped:
        try:
            commit(components, prepared)
        except Exception as exc:  # noqa: BLE001 - recorded on the job by fail_job
            fail_job(components, prepared.job, prepared.document, exc)


def swap_in(components: Components, prepared: Prepared) -> None:
    """Make the prepared version the document's only one in the index (:func:`ingest.index.swap.swap_version`)."""
    with telemetry.span("ingest.upsert", chunks=len(prepared.records)):
        swap_version(
            components.index,
            prepared.records,
            prepared.dense,
            prepared.sparse,
            previous=live_version(prepared.document),
        )


def commit(components: Components, prepared: Prepared) -> int:
    """After :func:`swap_in`: commit the version's rows, queue its attachments, finish the job; its chunk count."""
    target = prepared.target
    _commit_rows(components, prepared)
    if target.version > 1:  # the new original becomes the document's original
        components.blobs.put(target.id, prepared.data)
        components.blobs.delete(blob_key(target.id, target.version))
    _submit_attachments(components, target, prepared.parsed.attachments)
    # last, and in one transaction: a reader never sees the document ready while its job still runs, and a
    # crash before this leaves the job to be taken over (the steps above are idempotent)
    with session_scope(components.engine) as session:
        session.execute(_set_status(target.id, DocumentStatus.ready))
        finish_in(session, prepared.job.id)
    webhooks.announce_job(components.engine, prepared.job.id, webhooks.JOB_COMPLETED)
    telemetry.document_finished("ready", len(prepared.records))
    log.info("ingested document=%s version=%d chunks=%d", target.id, target.version, len(prepared.records))
    return len(prepared.records)


def _records(document: Document, parsed: ParsedDocument, spans: list[ChunkSpan], title: str) -> list[ChunkRecord]:
    acl = document.acl
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
            ocr=ocr,
        )
        for span, ocr in zip(spans, ocr_flags(parsed, spans), strict=True)
    ]


def _commit_rows(components: Components, prepared: Prepared) -> None:
    """The version's chunk rows replace the old ones, and the document row takes the version's fields; it stays
    ``processing`` until :func:`commit` marks it ready together with the job done."""
    target, parsed, spans = prepared.target, prepared.parsed, prepared.spans
    key = components.compliance.keyring.document_key(target.id)
    title = titles.seal(key, target.id, prepared.records[0].title)
    opening = preamble.seal(key, target.id, preamble.extract(parsed.text))  # read from the redacted text
    with session_scope(components.engine) as session:
        session.execute(delete(Chunk).where(col(Chunk.document_id) == target.id))
        session.add_all(
            Chunk(
                id=record.id,
                document_id=target.id,
                ordinal=s.ordinal,
                page=s.page,
                page_end=s.page_end,
                start=s.start,
                end=s.end,
                token_count=s.token_count,
                ocr=record.ocr,
            )
            for s, record in zip(spans, prepared.records, strict=True)
        )
        session.execute(
            _set_status(
                target.id,
                DocumentStatus.processing,
                pages=parsed.pages,
                chunk_count=len(spans),
                mime=parsed.mime,
                title=title,
                preamble=opening,
                error=None,
                error_code=None,
                version=target.version,
                filename=target.filename,
                content_hash=target.content_hash,
                size_bytes=target.size_bytes,
                collection=target.collection,
                classification=target.classification,
                acl_json=target.acl_json,
                metadata_json=target.metadata_json,
            )
        )


def _submit_attachments(components: Components, parent: Document, attachments: Sequence[Attachment]) -> None:
    """Each attachment becomes a child document with the parent's tenant, collection, ACL and classification.

    Resubmitting (a retried parent job) finds the same bytes already there, so children are not duplicated.
    """
    for attachment in attachments:
        upload = Upload(
            filename=attachment.filename,
            data=attachment.data,
            tenant=parent.tenant,
            collection=parent.collection,
            classification=parent.classification,
            acl=parent.acl,
            metadata={"attached_to": parent.id},
            parent_id=parent.id,
        )
        try:
            submit(components, upload)
        except EnclaveError as exc:  # e.g. an empty or oversized attachment: the parent is still fine
            log.warning("attachment not ingested document=%s code=%s", parent.id, exc.code)


def fail_job(components: Components, job: Job, document: Document, exc: Exception) -> None:
    """Record a failed attempt: retried when transient; otherwise the document says why.

    A failed *new* version leaves the current one in place: the document stays ready (with the new
    version's error attached) and the new version's original is removed.
    """
    if isinstance(exc, EnclaveError):
        message, code, retryable = exc.message, exc.code, exc.retryable
    else:
        log.error("ingest failed job=%s error=%s", job.id, type(exc).__name__, exc_info=exc)
        message, code, retryable = f"internal error while ingesting: {type(exc).__name__}", "internal_error", True
    if live_version(document) is None or _erased(components, document.id):  # nothing of it may remain indexed
        components.index.delete_document(document.tenant, document.id)
    requeued = fail(components.engine, job, message, code, retryable=retryable)
    telemetry.annotate(error_code=code, retried=requeued)
    telemetry.document_finished("retried" if requeued else "failed")
    if not requeued:
        _record_failure(components, job, document, message, code)
        webhooks.announce_job(components.engine, job.id, webhooks.JOB_FAILED)


def _erased(components: Components, document_id: str) -> bool:
    """The document was deleted while its job ran (its version may have been swapped in after the erasure)."""
    with session_scope(components.engine) as session:
        return session.get(Document, document_id) is None


def _record_failure(components: Components, job: Job, document: Document, message: str, code: str) -> None:
    with session_scope(components.engine) as session:
        current = session.get(Document, document.id)
        if current is None:
            return  # deleted meanwhile
        if current.version >= job.version and current.chunk_count > 0:  # committed before a later step failed
            if current.status == DocumentStatus.processing:
                # a new version stays indexed and is served; a first version's chunks fail_job took out of the index
                served = live_version(document) is not None
                status = DocumentStatus.ready if served else DocumentStatus.failed
                session.execute(_set_status(current.id, status, error=None if served else message, error_code=code))
            return
        if live_version(current) is not None:
            error = f"version {job.version} was not ingested (version {current.version} is still served): {message}"
            session.execute(_set_status(current.id, DocumentStatus.ready, error=error, error_code=code))
        else:
            session.execute(_set_status(current.id, DocumentStatus.failed, error=message, error_code=code))
    if job.version > 1:
        components.blobs.delete(blob_key(document.id, job.version))


def _set_status(document_id: str, status: DocumentStatus, **values: Any) -> Any:
    """An UPDATE of the document's row: its status, ``updated_at`` and the given columns."""
    return update(Document).where(col(Document.id) == document_id).values(status=status, updated_at=utcnow(), **values)

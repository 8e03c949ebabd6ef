"""Documents: submit an upload, read, list and delete documents, and the texts their chunks are embedded with.

:func:`submit` writes the encrypted original, the document row, its job, its key and the
``ingest.requested`` audit record in one transaction (the original and the key are removed again if
it fails). The job is processed by :mod:`ingest.pipeline`: nothing reaches the index until the new
version is complete, then its chunks replace the old version's in one step readers cannot split
(:mod:`ingest.index.swap`), and only then are the chunk rows and the document row committed. A reader
sees the old version or the new one, never neither and never both; a job that fails before the swap
leaves the index as it was, and one that dies after it is requeued and redoes both steps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from ingest import preamble, titles
from ingest.audit.trail import Actor, AuditEvent
from ingest.chunking import TokenChunker
from ingest.erasure import ErasureReceipt, erase_document
from ingest.errors import DocumentTooLarge, EmptyDocument, InvalidRequest, NotFound
from ingest.parsing.port import ParsedDocument
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Document, DocumentStatus, Job, JobStatus

log = logging.getLogger(__name__)
CHUNK_NAMESPACE = uuid.UUID("5b0c1f4e-7d1a-4f0e-9a51-6c2f3e8d9a10")
EMBED_BATCH = 64
HEADER_TOKENS = 40
FILE_SUFFIXES = {
    ".txt",
    ".md",
    ".pdf",
    ".docx",
    ".doc",
    ".pptx",
    ".xlsx",
    ".html",
    ".htm",
    ".eml",
    ".csv",
    ".rtf",
    ".json",
}


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
    parent_id: str | None = None  # the document (an e-mail) this one was attached to


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
    check_upload(components, upload)
    digest = content_hash(upload.data)
    title = titles.redacted(components.compliance, upload.title or _name(upload), upload.tenant, upload.classification)
    document = _new_document(upload, digest)
    keyring = components.compliance.keyring
    keyring.tenant_key(upload.tenant)
    try:
        with components.compliance.audit.transaction() as tx:  # document, job, key and audit record commit together
            existing = _find_duplicate(tx.session, upload, digest)
            if existing is not None:
                tx.append(ingest_event(upload, existing, "duplicate"))
                return Submission(existing, None, duplicate=True)
            key = keyring.create_document_key(upload.tenant, document.id, tx.session)
            document.title = titles.seal(key, document.id, title)
            components.blobs.put(document.id, upload.data)
            job = Job(document_id=document.id, max_attempts=components.settings.job_max_attempts)
            tx.session.add(document)
            tx.session.flush()
            tx.session.add(job)
            tx.append(ingest_event(upload, document, "accepted"))
    except BaseException:
        keyring.forget_document_key(document.id)
        components.blobs.delete(document.id)
        raise
    return Submission(document, job, duplicate=False)


def ingest_event(upload: Upload, document: Document, outcome: str) -> AuditEvent:
    actor = upload.actor or Actor.system(upload.tenant, "local")
    return AuditEvent(
        actor,
        "ingest.requested",
        outcome,
        document_ids=[document.id],
        detail={"collection": upload.collection, "classification": upload.classification, "bytes": len(upload.data)},
    )


def check_upload(components: Components, upload: Upload) -> None:
    limit = components.settings.max_upload_bytes
    if len(upload.data) > limit:
        raise DocumentTooLarge(
            f"file is {len(upload.data)} bytes; the limit is {limit} bytes (ENCLAVE_MAX_UPLOAD_BYTES)", param="file"
        )
    if not upload.data:
        raise EmptyDocument("the file is empty; upload a file with content", param="file")
    if upload.classification not in {"public", "internal", "confidential", "phi", "privileged"}:
        raise InvalidRequest(
            "classification must be one of public, internal, confidential, phi, privileged", param="classification"
        )


def _find_duplicate(session: Session, upload: Upload, digest: str) -> Document | None:
    # Same ACL and classification too: a duplicate is only ever a document the uploader asked to share
    # the same way, so the answer cannot reveal a document the uploader may not see.
    return session.exec(
        select(Document).where(
            Document.tenant == upload.tenant,
            Document.collection == upload.collection,
            Document.content_hash == digest,
            Document.classification == upload.classification,
            Document.acl_json == acl_json(upload.acl),
            col(Document.status) != DocumentStatus.failed,
        )
    ).first()


def _name(upload: Upload) -> str:
    return PurePath(upload.filename).name or "upload"


def _new_document(upload: Upload, digest: str) -> Document:
    """The row of a new document; its title is set, sealed, once the document's key exists."""
    return Document(
        tenant=upload.tenant,
        collection=upload.collection,
        title="",
        filename=_name(upload),
        content_hash=digest,
        size_bytes=len(upload.data),
        classification=upload.classification,
        acl_json=acl_json(upload.acl),
        metadata_json=json.dumps(upload.metadata),
        parent_id=upload.parent_id,
    )


def acl_json(acl: dict[str, list[str]]) -> str:
    return json.dumps({"groups": sorted(set(acl.get("groups", []))), "users": sorted(set(acl.get("users", [])))})


def context_header(components: Components, title: str, parsed: ParsedDocument) -> str:
    """The document's title and opening words, embedded with every chunk but never stored in it.

    A question usually names the document ("the affiliate agreement between Birch and Mount
    Kowledge") and the clause ("which law governs"). With the header in every chunk's vectors
    the naming part matches all of the document's chunks alike, so the clause part decides.
    """
    return header_text(components.chunker, title, parsed)


def header_text(chunker: TokenChunker, title: str, parsed: ParsedDocument) -> str:
    """:func:`context_header` from the chunker alone (bulk indexing for evaluation uses it too)."""
    opening = parsed.text[: parsed.elements[0].end + 400] if parsed.elements else ""
    offsets = chunker.token_offsets(opening)
    cut = offsets[HEADER_TOKENS - 1][1] if len(offsets) >= HEADER_TOKENS else len(opening)
    return f"{_title_words(title)}\n{' '.join(opening[:cut].split())}"


def _title_words(title: str) -> str:
    """A file name loses its extension and underscores; any other title stays whole ("A/B testing")."""
    path = PurePath(title)
    is_file_name = "/" not in title and path.suffix.lower() in FILE_SUFFIXES
    return (path.stem if is_file_name else title).replace("_", " ")


def embedding_text(header: str, chunk_text: str) -> str:
    """What the dense and the BM25 encoders see for one chunk: its document's header, then the chunk."""
    return f"{header}\n{chunk_text}"


def delete_document(
    components: Components, tenant: str, document_id: str, actor: Actor | None = None
) -> ErasureReceipt:
    """Erase a document everywhere (index points, chunk rows, jobs, original, row, its key) and audit it.

    :raises NotFound: no such document in this tenant (also when it belongs to another tenant).
    """
    return erase_document(components, actor or Actor.system(tenant, "local"), document_id)


def document_names(components: Components, tenant: str, document_ids: Sequence[str]) -> dict[str, str]:
    """For document focus (``service.retrieval.DocumentNames``): the title and parties of those of
    ``document_ids`` in ``tenant`` whose opening names any (the ids come from an access-filtered search)."""
    if not document_ids:
        return {}
    with components.engine.connect() as connection:  # three columns, no ORM session: this runs on every search
        rows = connection.execute(openings_by_id(document_ids)).all()
    keyring = components.compliance.keyring
    return {
        row.id: named
        for row in rows
        if row.tenant == tenant
        and row.preamble is not None
        and (named := preamble.of_stored(keyring, row.id, row.preamble).names)
    }


def openings_by_id(document_ids: Sequence[str]) -> Select[str, str, str] | Select[str, str, None]:
    """Id, tenant and sealed opening of the rows of ``document_ids``, looked up by primary key; the caller checks
    the tenant.

    A ``tenant = ?`` term in SQL would let SQLite (which keeps no statistics) walk the tenant's index
    instead: every document of the tenant read on every search that names one (5,000 rows, ~6 ms a
    search, in bench/query.py), where the key finds the ten asked for.
    """
    return select(Document.id, Document.tenant, Document.preamble).where(col(Document.id).in_(list(document_ids)))


def get_document(components: Components, tenant: str, document_id: str) -> Document:
    """The document, its title in clear.

    :raises NotFound: missing, or in another tenant (indistinguishable on purpose).
    """
    with session_scope(components.engine) as session:
        document = session.get(Document, document_id)
        if document is None or document.tenant != tenant:
            raise NotFound(f"document {document_id} not found")
    return titles.readable(components.compliance.keyring, document)


def latest_job(components: Components, document_id: str) -> Job | None:
    with session_scope(components.engine) as session:
        return session.exec(
            select(Job).where(Job.document_id == document_id).order_by(col(Job.created_at).desc())
        ).first()


def list_documents(
    components: Components, tenant: str, collection: str | None = None, limit: int = 100, offset: int = 0
) -> list[Document]:
    with session_scope(components.engine) as session:
        query = select(Document).where(Document.tenant == tenant)
        if collection is not None:
            query = query.where(Document.collection == collection)
        found = session.exec(query.order_by(col(Document.created_at).desc()).offset(offset).limit(limit)).all()
    return [titles.readable(components.compliance.keyring, document) for document in found]


def job_is_active(job: Job | None) -> bool:
    return job is not None and job.status in (JobStatus.queued, JobStatus.running)

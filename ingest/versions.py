"""Document versions: where each version's original lives, and what a new version changes.

A new version (``PUT /v1/documents/{id}``) does not touch the document's row until it is ready:
its file name, hash, ACL, classification and metadata wait on the job (``Job.upload_json``) and
its original waits under its own key, so readers keep the current version, and a failed new
version leaves the document exactly as it was.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import takewhile
from pathlib import PurePath
from typing import Any

from sqlmodel import Session, col, select

from ingest import titles
from ingest.blobs import blob_key
from ingest.chunking import ChunkSpan
from ingest.documents import Submission, Upload, acl_json, check_upload, content_hash, ingest_event
from ingest.errors import Conflict, NotFound
from ingest.parsing.port import ParsedDocument
from ingest.runtime import Components
from ingest.store.models import Document, DocumentStatus, Job, JobStatus


@dataclass(frozen=True)
class PendingUpload:
    """A new version's own fields, applied to the document row when the version is ready."""

    filename: str
    title: str  # redacted and sealed, as in the document row (ingest.titles)
    content_hash: str
    size_bytes: int
    classification: str
    collection: str
    acl: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> PendingUpload:
        return cls(**json.loads(raw))


def target_of(document: Document, job: Job) -> Document:
    """The document as it will be once ``job`` is done: its version and, for a new version, its new fields."""
    if job.upload_json is None:
        return document.model_copy(update={"version": max(job.version, document.version)})
    pending = PendingUpload.from_json(job.upload_json)
    return document.model_copy(
        update={
            "version": job.version,
            "filename": pending.filename,
            "title": pending.title,
            "content_hash": pending.content_hash,
            "size_bytes": pending.size_bytes,
            "classification": pending.classification,
            "collection": pending.collection,
            "acl_json": json.dumps(pending.acl),
            "metadata_json": json.dumps(pending.metadata),
        }
    )


def live_version(document: Document) -> int | None:
    """The version readers see now: None while the document has never been ready."""
    return document.version if document.chunk_count > 0 else None


def ocr_flags(parsed: ParsedDocument, spans: Sequence[ChunkSpan]) -> list[bool]:
    """Per chunk: does any of its text come from an OCR'd element?"""
    if not any(element.ocr for element in parsed.elements):
        return [False] * len(spans)
    ends = [element.end for element in parsed.elements]
    flags = []
    for span in spans:
        i = bisect_left(ends, span.start + 1)  # the first element ending after the chunk starts
        end = span.end
        covering = takewhile(lambda e: e.start < end, parsed.elements[i:])  # noqa: B023 - consumed at once
        flags.append(any(e.ocr for e in covering))
    return flags


def submit_version(components: Components, document_id: str, upload: Upload) -> Submission:
    """Queue ``upload`` as the next version of an existing document (``PUT /v1/documents/{id}``).

    The document keeps serving its current version until the new one is ready; the same bytes as
    the current version change nothing (``duplicate``).

    :raises NotFound: no such document in the upload's tenant.
    :raises Conflict: a version of it is still queued or being ingested.
    :raises DocumentTooLarge: / :raises EmptyDocument: as for a new upload.
    """
    check_upload(components, upload)
    digest = content_hash(upload.data)
    name = PurePath(upload.filename).name or "upload"
    title = titles.redacted(components.compliance, upload.title or name, upload.tenant, upload.classification)
    with components.compliance.audit.transaction() as tx:
        document = _current(tx.session, upload.tenant, document_id)
        if digest == document.content_hash and document.status != DocumentStatus.failed:
            tx.append(ingest_event(upload, document, "duplicate"))
            return Submission(document, None, duplicate=True)
        version = document.version + (1 if document.chunk_count > 0 else 0)  # a never-ready document is redone
        sealed_title = titles.seal(components.compliance.keyring.document_key(document.id), document.id, title)
        key = blob_key(document.id, version)
        components.blobs.put(key, upload.data)
        try:
            job = Job(
                document_id=document.id,
                version=version,
                upload_json=_pending(upload, digest, sealed_title).to_json(),
                max_attempts=components.settings.job_max_attempts,
            )
            tx.session.add(job)
            tx.append(ingest_event(upload, document, "new_version"))
        except BaseException:
            if version > 1:
                components.blobs.delete(key)
            raise
    return Submission(document, job, duplicate=False)


def _current(session: Session, tenant: str, document_id: str) -> Document:
    document = session.get(Document, document_id)
    if document is None or document.tenant != tenant:
        raise NotFound(f"document {document_id} not found", param="document_id")
    active = session.exec(
        select(Job).where(Job.document_id == document_id, col(Job.status).in_([JobStatus.queued, JobStatus.running]))
    ).first()
    if active is not None:
        raise Conflict(
            f"version {active.version} of document {document_id} is still being ingested (job {active.id}); "
            "wait until its job is done or failed, then upload the new version again"
        )
    return document


def _pending(upload: Upload, digest: str, sealed_title: str) -> PendingUpload:
    acl = json.loads(acl_json(upload.acl))
    return PendingUpload(
        filename=PurePath(upload.filename).name or "upload",
        title=sealed_title,
        content_hash=digest,
        size_bytes=len(upload.data),
        classification=upload.classification,
        collection=upload.collection,
        acl=acl,
        metadata=upload.metadata,
    )

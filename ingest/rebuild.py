"""``enclave index rebuild``: re-embed every document with the configured embedder, then record it.

Run after changing ``ENCLAVE_EMBEDDER__BACKEND`` (or its precision) on a site that already holds
documents: the site refuses to start with an embedder other than the one that made its vectors
(:mod:`ingest.embedding.identity`). Each ready document goes through the ingest pipeline again,
from its stored original, at its current version: parsed, redacted, chunked and embedded as on
upload, swapped into the index under the same chunk ids and committed. The new embedder is
recorded only after every document succeeded; until then the site keeps refusing it, and running
the command again redoes the work (chunk ids are deterministic).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import col, select

from ingest.embedding.identity import record_embedder
from ingest.errors import EnclaveError
from ingest.jobs import fail
from ingest.pipeline import complete, embed_prepared, prepare
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Document, DocumentStatus, Job, JobStatus, utcnow

log = logging.getLogger(__name__)
WORKER = "enclave-index-rebuild"


@dataclass
class RebuildReport:
    documents: int = 0
    chunks: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # document id -> why
    seconds: float = 0.0
    recorded: bool = False


def rebuild_index(components: Components, on_document: Callable[[int, int], None] | None = None) -> RebuildReport:
    """Re-embed every ready document; record the configured embedder if all of them succeeded."""
    started = time.perf_counter()
    with session_scope(components.engine) as session:
        documents = list(
            session.exec(
                select(Document).where(Document.status == DocumentStatus.ready).order_by(col(Document.created_at))
            ).all()
        )
    report = RebuildReport()
    for number, document in enumerate(documents, 1):
        job = _job(components, document)
        try:
            prepared = prepare(components, job, document)
            embed_prepared(components, prepared)
            report.chunks += complete(components, prepared)
            report.documents += 1
        except EnclaveError as exc:  # the document keeps its old vectors; the embedder is not recorded
            report.failed[document.id] = exc.message
            fail(components.engine, job, exc.message, exc.code, retryable=False)
            log.error("index.rebuild_failed document=%s code=%s", document.id, exc.code)
        if on_document is not None:
            on_document(number, len(documents))
    if not report.failed:
        record_embedder(components.engine, components.embedder)
        report.recorded = True
    report.seconds = time.perf_counter() - started
    return report


def _job(components: Components, document: Document) -> Job:
    """A job row for the rebuild of one document at its current version (progress and outcome are kept)."""
    job = Job(
        document_id=document.id,
        version=document.version,
        status=JobStatus.running,
        attempts=1,
        max_attempts=1,
        worker=WORKER,
        heartbeat_at=utcnow(),
    )
    with session_scope(components.engine) as session:
        session.add(job)
    return job

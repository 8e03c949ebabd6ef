"""Submitting, processing and deleting documents through the real store, index, parser and embedder."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from ingest import documents as docs
from ingest.errors import DocumentTooLarge, EmptyDocument, TransientIngestError
from ingest.index.port import AccessFilter
from ingest.jobs import claim_next, requeue_stale
from ingest.pipeline import run_job
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Chunk, Job, JobStatus, utcnow
from ingest.worker import drain
from tests.conftest import CUAD, DOCS

T = "default"


def _upload(path, **kw) -> docs.Upload:  # type: ignore[no-untyped-def]
    return docs.Upload(
        filename=path.name,
        data=path.read_bytes(),
        tenant=kw.pop("tenant", T),
        collection=kw.pop("collection", "c"),
        **kw,
    )


def _contract(i: int = 0):  # type: ignore[no-untyped-def]
    return sorted((CUAD / "contracts").glob("*.txt"))[i]


def test_ingest_makes_a_ready_document_with_findable_chunks(components: Components) -> None:
    sub = docs.submit(components, _upload(_contract()))
    assert sub.job is not None and not sub.duplicate
    assert drain(components) == 1
    doc = docs.get_document(components, T, sub.document.id)
    assert doc.status == "ready" and doc.chunk_count > 5 and doc.pages == 1 and doc.mime == "text/plain"
    assert doc.content_hash == docs.content_hash(_contract().read_bytes())
    assert components.index.count(AccessFilter(tenant=T, document_ids=(doc.id,))) == doc.chunk_count
    with session_scope(components.engine) as s:
        rows = s.exec(select(Chunk).where(Chunk.document_id == doc.id)).all()
    text = _contract().read_text(encoding="utf-8")
    assert len(rows) == doc.chunk_count and all(0 <= r.start < r.end <= len(text) for r in rows)


def test_same_bytes_twice_is_one_document(components: Components) -> None:
    first = docs.submit(components, _upload(_contract()))
    second = docs.submit(components, _upload(_contract()))
    assert second.duplicate and second.document.id == first.document.id and second.job is None


@pytest.mark.parametrize(
    "name, code", [("bad/invalid.pdf", "corrupt_document"), ("bad/crazyones-encrypted-256.pdf", "encrypted_document")]
)
def test_bad_input_fails_once_with_a_reason_and_indexes_nothing(components: Components, name: str, code: str) -> None:
    sub = docs.submit(components, _upload(DOCS / name))
    drain(components)
    doc = docs.get_document(components, T, sub.document.id)
    job = docs.latest_job(components, doc.id)
    assert doc.status == "failed" and doc.error_code == code and doc.error
    assert job is not None and job.status == JobStatus.failed and job.attempts == 1  # bad input is not retried
    assert components.index.count(AccessFilter(tenant=T)) == 0


def test_empty_and_oversized_uploads_are_refused_before_anything_is_stored(components: Components) -> None:
    with pytest.raises(EmptyDocument):
        docs.submit(components, docs.Upload(filename="e.txt", data=b"", tenant=T, collection="c"))
    components.settings.max_upload_bytes = 10
    with pytest.raises(DocumentTooLarge):
        docs.submit(components, _upload(_contract()))
    assert docs.list_documents(components, T) == []


def test_delete_removes_chunks_rows_and_original(components: Components) -> None:
    sub = docs.submit(components, _upload(_contract()))
    drain(components)
    docs.delete_document(components, T, sub.document.id)
    assert components.index.count(AccessFilter(tenant=T)) == 0
    with session_scope(components.engine) as s:
        assert s.exec(select(Chunk)).all() == []
    with pytest.raises(FileNotFoundError):
        components.blobs.get(sub.document.id)


def test_racing_workers_claim_each_job_exactly_once(components: Components) -> None:
    for i in range(6):
        docs.submit(components, _upload(_contract(i)))
    claimed: list[str] = []

    def race() -> None:
        while (job := claim_next(components.engine, threading.current_thread().name)) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 6 and len(set(claimed)) == 6


def test_a_job_abandoned_mid_run_is_requeued_and_completes_without_duplicates(components: Components) -> None:
    sub = docs.submit(components, _upload(_contract()))
    job = claim_next(components.engine, "worker-that-dies")
    assert job is not None
    run_job(components, job)  # it wrote everything, then "died" before anyone saw it finish
    with session_scope(components.engine) as s:
        s.execute(
            update(Job)
            .where(col(Job.id) == job.id)
            .values(status=JobStatus.running, heartbeat_at=utcnow() - timedelta(minutes=5))
        )
    assert requeue_stale(components.engine, timedelta(seconds=60)) == 1
    drain(components)
    doc = docs.get_document(components, T, sub.document.id)
    assert doc.status == "ready"
    assert components.index.count(AccessFilter(tenant=T)) == doc.chunk_count


class _FlakyIndex:
    """Fault injection at the index boundary: the first upsert fails as a restarting index would."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.failures = inner, 1

    def upsert(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise TransientIngestError("index briefly unavailable")
        return self.inner.upsert(*args, **kwargs)

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_transient_errors_are_retried_with_backoff(components: Components) -> None:
    components.index = _FlakyIndex(components.index)  # type: ignore[assignment]
    sub = docs.submit(components, _upload(_contract()))
    drain(components)
    job = docs.latest_job(components, sub.document.id)
    assert job is not None and job.status == JobStatus.queued and job.attempts == 1 and job.not_before > utcnow()
    with session_scope(components.engine) as s:
        s.execute(update(Job).where(col(Job.id) == job.id).values(not_before=utcnow()))
    drain(components)
    assert docs.get_document(components, T, sub.document.id).status == "ready"

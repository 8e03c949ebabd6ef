"""The ingest worker completes a batch's documents with one index flush, and marks none ready before it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select

from ingest import documents as docs
from ingest import pipeline
from ingest.batching import BatchingWorker
from ingest.errors import EnclaveError, ServiceUnavailable
from ingest.index.port import AccessFilter, ChunkRecord, SparseVector
from ingest.index.qdrant_edge_index import QdrantEdgeIndex
from ingest.index.swap import AtomicSwapIndex, flushed_once, innermost, swap_version
from ingest.jobs import claim_next
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Document, DocumentStatus, Job, JobStatus, utcnow
from ingest.versions import submit_version
from tests.chunks import chunk_record
from tests.ingest.conftest import TENANT, contract, upload

DIM = 4


class CountingShard:
    """The engine's shard, with each flush counted (and failing on demand) and noted in ``events``."""

    def __init__(self, inner: Any, events: list[tuple[str, str]] | None = None) -> None:
        self.inner, self.flushes, self.fail_next = inner, 0, False
        self.events = events if events is not None else []

    def flush(self) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        self.flushes += 1
        self.events.append(("flush", ""))
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _version(document_id: str, version: int = 1, n: int = 3) -> list[ChunkRecord]:
    return [
        chunk_record(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{document_id}/{version}/{i}")),
            tenant="t1",
            collection="c1",
            document_id=document_id,
            ordinal=i,
            version=version,
        )
        for i in range(n)
    ]


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[tuple[AtomicSwapIndex, CountingShard]]:
    edge = QdrantEdgeIndex(tmp_path / "index", DIM)
    edge.warm_up()
    shard = CountingShard(edge._shard)
    edge._shard = shard  # type: ignore[assignment]
    yield AtomicSwapIndex(edge), shard
    edge.close()


def _swap(index: AtomicSwapIndex, document_id: str, version: int = 1, previous: int | None = None) -> None:
    records = _version(document_id, version)
    swap_version(
        index, records, [[1.0, 0.0, 0.0, float(version)]] * 3, [SparseVector([1], [1.0])] * 3, previous=previous
    )


def test_swaps_inside_the_block_share_one_flush(counted: tuple[AtomicSwapIndex, CountingShard]) -> None:
    index, shard = counted
    for name in ("a", "b"):
        _swap(index, name)
    assert shard.flushes == 2  # each swap on its own: one flush each

    with flushed_once(index):
        for name in ("c", "d", "e"):
            _swap(index, name)
        _swap(index, "a", version=2, previous=1)
        assert shard.flushes == 2  # nothing flushed yet
    assert shard.flushes == 3  # one for all four

    assert index.count(AccessFilter(tenant="t1")) == 5 * 3  # "a" holds only its new version
    _swap(index, "f")
    assert shard.flushes == 4  # after the block, each swap flushes again


def test_another_threads_delete_flushes_while_one_defers(counted: tuple[AtomicSwapIndex, CountingShard]) -> None:
    """An erasure on a request thread is durable when it returns, even while the worker defers its flush."""
    index, shard = counted
    _swap(index, "gone")
    before = shard.flushes
    with flushed_once(index):
        _swap(index, "kept")
        eraser = threading.Thread(target=index.delete_document, args=("t1", "gone"))
        eraser.start()
        eraser.join()
        assert shard.flushes == before + 1
    assert shard.flushes == before + 2
    found = index.search([1.0, 0, 0, 1.0], SparseVector([], []), AccessFilter(tenant="t1"), 10, "dense").chunks
    assert {c.record.document_id for c in found} == {"kept"}


def test_a_block_that_raises_is_not_flushed(counted: tuple[AtomicSwapIndex, CountingShard]) -> None:
    index, shard = counted
    with pytest.raises(RuntimeError), flushed_once(index):
        _swap(index, "a")
        raise RuntimeError("stop")
    assert shard.flushes == 0
    _swap(index, "b")  # deferral ended with the block
    assert shard.flushes == 1


def _counted_site(site: Components, events: list[tuple[str, str]]) -> CountingShard:
    edge = innermost(site.index)
    assert isinstance(edge, QdrantEdgeIndex)
    shard = CountingShard(edge._shard, events)
    edge._shard = shard  # type: ignore[assignment]
    return shard


def test_the_worker_flushes_each_batch_once_and_marks_documents_ready_after(
    site: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    shard = _counted_site(site, events)
    swap_in, commit = pipeline.swap_in, pipeline.commit

    def noted_swap(components: Components, prepared: pipeline.Prepared) -> None:
        swap_in(components, prepared)
        events.append(("swap", prepared.document.id))

    def noted_commit(components: Components, prepared: pipeline.Prepared) -> int:
        events.append(("commit", prepared.document.id))
        return commit(components, prepared)

    monkeypatch.setattr(pipeline, "swap_in", noted_swap)
    monkeypatch.setattr(pipeline, "commit", noted_commit)
    submitted = [docs.submit(site, upload(contract(i))) for i in range(6)]
    ids = [s.document.id for s in submitted if s.job is not None]  # two of the short contracts are the same text
    assert len(ids) >= 4 and BatchingWorker(site, "w1", batch_size=256).drain() == len(ids)

    with session_scope(site.engine) as session:
        assert {d.status for d in session.exec(select(Document)).all()} == {DocumentStatus.ready}
    for document_id in ids:  # a flush after the document's swap and before its commit
        swapped = events.index(("swap", document_id))
        committed = events.index(("commit", document_id))
        assert ("flush", "") in events[swapped:committed], events
    assert shard.flushes < len(ids)  # documents finished by the same batch shared their flush


def test_a_failed_flush_fails_every_document_of_the_group_and_commits_none(site: Components) -> None:
    shard = _counted_site(site, [])
    for i in range(2):
        docs.submit(site, upload(contract(i)))
    group = []
    while (job := claim_next(site.engine, "w1")) is not None:
        document = pipeline.start(site, job)
        assert document is not None
        prepared = pipeline.prepare(site, job, document)
        pipeline.embed_prepared(site, prepared)
        group.append(prepared)

    shard.fail_next = True
    pipeline.complete_all(site, group)

    with session_scope(site.engine) as session:
        assert {d.status for d in session.exec(select(Document)).all()} == {DocumentStatus.processing}
        jobs = session.exec(select(Job)).all()
        assert {j.status for j in jobs} == {JobStatus.queued}  # retried later
        assert all("OSError" in (j.error or "") for j in jobs)
    assert site.index.count(AccessFilter(tenant=TENANT)) == 0  # first versions: nothing of them stays indexed


def _states(site: Components, document_id: str) -> tuple[DocumentStatus, JobStatus]:
    with session_scope(site.engine) as session:
        document = session.get(Document, document_id)
        job = session.exec(select(Job).where(Job.document_id == document_id)).one()
        assert document is not None
        return document.status, job.status


def test_a_document_turns_ready_in_the_transaction_that_finishes_its_job(
    site: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GET /v1/documents/{id}`` never shows a ready document whose job still runs: the steps after the rows
    are committed (the original promoted, attachments queued) see it still processing."""
    seen: list[tuple[DocumentStatus, JobStatus]] = []
    submit_attachments = pipeline._submit_attachments

    def noted(components: Components, parent: Document, attachments: Any) -> None:
        seen.append(_states(components, parent.id))
        submit_attachments(components, parent, attachments)

    monkeypatch.setattr(pipeline, "_submit_attachments", noted)
    submitted = docs.submit(site, upload(contract(0)))
    assert BatchingWorker(site, "w1").drain() == 1
    assert seen == [(DocumentStatus.processing, JobStatus.running)]
    assert _states(site, submitted.document.id) == (DocumentStatus.ready, JobStatus.done)


def test_a_step_failing_after_the_commit_leaves_no_document_processing(
    site: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retryable failure leaves the document processing for the retry; a final one leaves a new version
    served (ready) and a first version, whose chunks fail_job took out of the index, failed with the reason."""
    failures: list[EnclaveError] = [EnclaveError("attachment store refused")]
    submit_attachments = pipeline._submit_attachments

    def refuse(components: Components, parent: Document, attachments: Any) -> None:
        if failures:
            raise failures.pop(0)
        submit_attachments(components, parent, attachments)

    monkeypatch.setattr(pipeline, "_submit_attachments", refuse)
    worker = BatchingWorker(site, "w1")
    first = docs.submit(site, upload(contract(0))).document.id
    worker.drain()
    assert _states(site, first) == (DocumentStatus.failed, JobStatus.failed)
    with session_scope(site.engine) as session:
        row = session.get(Document, first)
        assert row is not None and row.error == "attachment store refused"
    access = AccessFilter(tenant=TENANT)
    assert site.index.search([0.1] * site.embedder.dim, SparseVector([], []), access, 3, "dense").chunks == []

    failures.append(ServiceUnavailable("attachment store busy"))
    second = docs.submit(site, upload(contract(1))).document.id
    worker.drain()
    assert _states(site, second) == (DocumentStatus.processing, JobStatus.queued)  # retried after a backoff
    with session_scope(site.engine) as session:
        session.execute(update(Job).values(not_before=utcnow()))
    worker.drain()
    assert _states(site, second) == (DocumentStatus.ready, JobStatus.done)

    failures.append(EnclaveError("attachment store refused"))
    assert submit_version(site, second, upload(contract(3))).job is not None
    worker.drain()
    with session_scope(site.engine) as session:
        row = session.get(Document, second)
        assert row is not None and (row.status, row.version, row.error) == (DocumentStatus.ready, 2, None)

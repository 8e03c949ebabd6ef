"""Qdrant Edge builds no HNSW graph by itself: the ingest worker has it built once enough vectors lack one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest import documents as docs
from ingest.index.maintenance import build_graph_if_due
from ingest.index.port import AccessFilter, ChunkRecord, SparseVector
from ingest.index.qdrant_edge_index import QdrantEdgeIndex
from ingest.index.swap import AtomicSwapIndex, innermost
from ingest.runtime import build_components
from ingest.worker import run_worker
from tests.chunks import chunk_record
from tests.conftest import make_settings
from tests.ingest.conftest import TENANT, contract, upload

DIM = 8
FULL_SCAN_KB = 8  # 256 vectors of 8 float32 dimensions


def _records(start: int, n: int) -> list[ChunkRecord]:
    return [
        chunk_record(
            id=str(uuid.UUID(int=start + i)), tenant="t1", collection="c1", document_id=f"d{start + i}", title=""
        )
        for i in range(n)
    ]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[QdrantEdgeIndex]:
    idx = QdrantEdgeIndex(tmp_path / "index", DIM, full_scan_kb=FULL_SCAN_KB)
    idx.warm_up()
    yield idx
    idx.close()


def test_the_graph_is_built_once_a_full_scans_worth_of_vectors_lacks_one(index: QdrantEdgeIndex) -> None:
    vectors = np.random.default_rng(7).normal(size=(400, DIM))
    wrapped = AtomicSwapIndex(index)  # as production holds it: the optimize goes through the swap lock
    sparse = [SparseVector([1], [1.0])] * 200

    index.upsert(_records(0, 200), vectors[:200].tolist(), sparse)
    assert index.unindexed() == 200 and not index.graph_due()
    assert build_graph_if_due(wrapped) is False  # below the threshold: scanned, nothing rewritten
    assert index.unindexed() == 200

    index.upsert(_records(200, 200), vectors[200:].tolist(), sparse)
    assert index.graph_due()
    assert build_graph_if_due(wrapped) is True
    assert index.unindexed() == 0 and not index.graph_due()

    # the graph answers as the scan did: every stored vector finds itself first
    access = AccessFilter(tenant="t1")
    for i in (0, 123, 399):
        found = index.search(vectors[i].tolist(), SparseVector([], []), access, 1, "dense").chunks
        assert found[0].record.document_id == f"d{i}"

    index.upsert(_records(400, 10), np.random.default_rng(8).normal(size=(10, DIM)).tolist(), sparse[:10])
    assert index.unindexed() == 10 and build_graph_if_due(wrapped) is False


def test_the_ingest_worker_leaves_the_index_with_its_graph(tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "data", index={"full_scan_kb": 15})  # 10 vectors of 384 dimensions
    site = build_components(settings, embedder=embedder, parser=parser)
    try:
        for i in range(2):
            docs.submit(site, upload(contract(i)))
        run_worker(site, until_empty=True, poll_s=0.05)
        edge = innermost(site.index)
        assert isinstance(edge, QdrantEdgeIndex)
        chunks = site.index.count(AccessFilter(tenant=TENANT))
        assert chunks > 10 and edge.unindexed() == 0, chunks
    finally:
        site.close()

"""The Qdrant Edge adapter against the index contract (tests/ingest/index_contract.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.index.port import VectorIndex
from ingest.index.qdrant_edge_index import QdrantEdgeIndex
from tests.ingest.index_contract import IndexContract, Reopen


class TestQdrantEdgeIndex(IndexContract):
    @pytest.fixture
    def index(self, tmp_path: Path, embedder) -> Iterator[QdrantEdgeIndex]:  # type: ignore[no-untyped-def]
        idx = QdrantEdgeIndex(tmp_path / "index", embedder.dim)
        idx.warm_up()
        yield idx
        idx.close()

    @pytest.fixture
    def reopen(self, tmp_path: Path, embedder) -> Iterator[Reopen]:  # type: ignore[no-untyped-def]
        opened: list[QdrantEdgeIndex] = []

        def again(index: VectorIndex) -> VectorIndex:
            index.close()
            fresh = QdrantEdgeIndex(tmp_path / "index", embedder.dim)
            fresh.warm_up()
            opened.append(fresh)
            return fresh

        yield again
        for idx in opened:
            idx.close()

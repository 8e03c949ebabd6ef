"""The Qdrant Edge adapter against the index contract (tests/ingest/index_contract.py)."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import qdrant_edge as qe
from typer.testing import CliRunner

from ingest.config import IndexSettings, Settings
from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index import term_stats
from ingest.index.port import AccessFilter, ChunkRecord, VectorIndex
from ingest.index.qdrant_edge_index import QdrantEdgeIndex, is_legacy, payload_of
from ingest.keys.terms import key_vector, term_key
from ingest.runtime import make_index
from tests.conftest import make_settings
from tests.ingest.index_contract import IndexContract, Reopen, fill, record

BM25 = QdrantBm25Encoder()


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


def _legacy_shard(path: Path, embedder, records: list[ChunkRecord]) -> None:  # type: ignore[no-untyped-def]
    """An index as the earlier Enclave wrote it: a write-ahead log, index-side IDF, public term ids."""
    config = qe.EdgeConfig(
        vectors={"dense": qe.EdgeVectorParams(size=embedder.dim, distance=qe.Distance.Cosine)},
        sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    shard = qe.EdgeShard.create(str(path), config)
    dense = embedder.embed_passages([r.text for r in records])
    points = [
        qe.Point(
            id=r.id,
            vector={"dense": list(map(float, vec)), "bm25": qe.SparseVector(sp.indices, sp.values)},
            payload=payload_of(r),
        )
        for r, vec, sp in zip(records, dense, (BM25.embed_passage(r.text) for r in records), strict=True)
    ]
    shard.update(qe.UpdateOperation.upsert_points(points))
    shard.flush()
    shard.close()


def test_an_index_of_the_earlier_format_is_upgraded_in_place_with_keyed_term_ids(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "index"
    _legacy_shard(path, embedder, [record(1, "law"), record(2, "pay"), record(3, "hand", tenant="t2")])
    assert is_legacy(path)
    keys = {"t1": b"\1" * 32, "t2": b"\2" * 32}
    index = QdrantEdgeIndex(path, embedder.dim)
    index.legacy_terms = lambda tenant, sparse: key_vector(term_key(keys[tenant]), sparse)
    index.warm_up()
    try:
        assert not is_legacy(path) and not (path / "wal").exists()
        assert index.count(AccessFilter(tenant="t1")) == 2 and index.count(AccessFilter(tenant="t2")) == 1
        query = key_vector(term_key(keys["t1"]), BM25.embed_query("laws of Delaware"))
        found = index.search(embedder.embed_query("laws of Delaware"), query, AccessFilter(tenant="t1"), 5, "bm25")
        assert [c.record.document_id for c in found.chunks] == ["law"]
        public = BM25.embed_query("Delaware").indices[0]
        stored = b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())
        assert struct.pack("<I", public) not in stored and struct.pack(">I", public) not in stored
    finally:
        index.close()
    assert not path.with_name("index.upgrading").exists() and not path.with_name("index.upgraded").exists()


def test_enclave_index_upgrade_rewrites_the_index_with_the_sites_settings(  # type: ignore[no-untyped-def]
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.cli.index
    from service.cli import app

    settings = make_settings(tmp_path / "site", index=IndexSettings(hnsw_m=24, hnsw_ef_construct=64, search_threads=2))
    _legacy_shard(settings.index_dir, embedder, [record(1, "law"), record(2, "pay")])
    monkeypatch.setattr(service.cli.index, "get_settings", lambda: settings)
    result = CliRunner().invoke(app, ["index", "upgrade"], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "upgraded the embedded index" in result.output, result.output
    stored = json.loads((settings.index_dir / "edge_config.json").read_text())
    graph = stored["hnsw_config"]
    assert (graph["m"], graph["ef_construct"], stored["max_search_threads"]) == (24, 64, 2)


def test_an_upgrade_that_stopped_half_way_starts_over_from_the_intact_old_index(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "index"
    _legacy_shard(path, embedder, [record(1, "law")])
    (tmp_path / "index.upgrading").mkdir()
    (tmp_path / "index.upgrading" / "partial").write_bytes(b"half a shard")
    index = QdrantEdgeIndex(path, embedder.dim)
    index.warm_up()
    try:
        assert index.count(AccessFilter(tenant="t1")) == 1 and not is_legacy(path)
    finally:
        index.close()


def test_scoped_idf_scores_as_the_engines_index_wide_idf_did_for_a_single_reader(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """With one tenant and no ACL the per-caller statistics are the engine's own: same scores, same ranking."""
    records = [record(i, key, document_id=f"{key}{i}") for i, key in enumerate(["law", "pay", "hand"] * 4)]
    _legacy_shard(tmp_path / "earlier", embedder, records)
    earlier = qe.EdgeShard.load(str(tmp_path / "earlier"))
    current = QdrantEdgeIndex(tmp_path / "current", embedder.dim)
    current.warm_up()
    try:
        current.upsert(
            records, embedder.embed_passages([r.text for r in records]), [BM25.embed_passage(r.text) for r in records]
        )
        for question in ("laws of the State of Delaware", "invoices payable within thirty days", "alcohol rub"):
            query = BM25.embed_query(question)
            engine = earlier.query(
                qe.QueryRequest(
                    limit=12, query=qe.Query.Nearest(qe.SparseVector(query.indices, query.values), using="bm25")
                )
            )
            ours = current.search(embedder.embed_query(question), query, AccessFilter(tenant="t1"), 12, "bm25").chunks
            # the same chunks with the same scores (ties between copies of one text may come in either order)
            assert sorted((round(p.score, 4), str(p.id)) for p in engine) == sorted(
                (round(c.score, 4), c.record.id) for c in ours
            )
    finally:
        earlier.close()
        current.close()


def test_term_counts_are_kept_until_a_write_however_old(tmp_path: Path, embedder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The shard is this process's alone and every write drops the cached counts, so age never does: no recount
    of every asked term each 30 s (a Qdrant server, which other processes write to, keeps the age limit)."""
    counted: list[int] = []
    count_term = QdrantEdgeIndex._count_term

    def counting(self: QdrantEdgeIndex, access: AccessFilter, term: int) -> int:
        counted.append(term)
        return count_term(self, access, term)

    monkeypatch.setattr(QdrantEdgeIndex, "_count_term", counting)
    index = QdrantEdgeIndex(tmp_path / "index", embedder.dim)
    index.warm_up()
    try:
        law = record(1, "law", tenant="default")
        index.upsert([law], embedder.embed_passages([law.text]), [BM25.embed_passage(law.text)])
        reader, query = AccessFilter(tenant="default"), BM25.embed_query("which state's laws govern")
        weighed = index.idf.weigh(reader, query)
        asked = len(counted)
        later = term_stats.time.monotonic() + 86_400.0
        monkeypatch.setattr(term_stats.time, "monotonic", lambda: later)  # a day on
        assert index.idf.weigh(reader, query) == weighed and len(counted) == asked
        pay = record(2, "pay", tenant="default")
        index.upsert([pay], embedder.embed_passages([pay.text]), [BM25.embed_passage(pay.text)])
        assert index.idf.weigh(reader, query) != weighed and len(counted) > asked  # a write drops them
    finally:
        index.close()


def test_the_search_pool_is_the_configured_size_and_ranks_alike(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """``index.search_threads`` (default 1) sizes the shard's search pool; the pool's size changes no result."""
    records = [record(i, key, document_id=f"{key}{i}") for i, key in enumerate(["law", "pay", "hand"] * 5)]
    configured = {
        1: Settings(data_dir=tmp_path / "default"),
        3: Settings(data_dir=tmp_path / "three", index=IndexSettings(search_threads=3)),
    }
    found: dict[int, list[tuple[float, str]]] = {}
    for threads, settings in configured.items():
        index = make_index(settings, embedder.dim)
        index.warm_up()
        try:
            fill(index, embedder, records)
            stored = json.loads((settings.index_dir / "edge_config.json").read_text())
            assert stored["max_search_threads"] == threads
            question = "which state's laws govern the agreement"
            result = index.search(embedder.embed_query(question), BM25.embed_query(question), AccessFilter("t1"), 15)
            # every chunk (ties between copies of one text may come in either order, and cut at any of them)
            found[threads] = sorted((-round(c.score, 5), c.record.document_id) for c in result.chunks)
        finally:
            index.close()
    assert len(found[1]) == len(records) and found[1][0][1].startswith("law")
    assert found[1] == found[3]

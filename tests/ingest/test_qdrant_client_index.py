"""The qdrant-client (server/cluster) adapter: the index contract on qdrant-client's local mode,
plus what only this adapter has: collection settings, batched upserts, the factory's choice."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from ingest.config import IndexSettings
from ingest.errors import ConfigurationError, ServiceUnavailable
from ingest.index.port import AccessFilter, SparseVector, VectorIndex
from ingest.index.qdrant_client_index import ClusterConfig, QdrantClientIndex
from ingest.index.qdrant_edge_index import QdrantEdgeIndex
from ingest.runtime import make_index
from tests.conftest import make_settings
from tests.ingest.index_contract import IndexContract, Reopen, record

pytestmark = pytest.mark.filterwarnings("ignore:.*(Payload indexes|Local mode).*:UserWarning")


def _open(path: Path, dim: int, **config: object) -> QdrantClientIndex:
    idx = QdrantClientIndex(dim, ClusterConfig(**config), client=QdrantClient(path=str(path)))  # type: ignore[arg-type]
    idx.warm_up()
    return idx


class TestQdrantClientIndex(IndexContract):
    @pytest.fixture
    def index(self, tmp_path: Path, embedder) -> Iterator[QdrantClientIndex]:  # type: ignore[no-untyped-def]
        idx = _open(tmp_path / "qdrant", embedder.dim)
        yield idx
        idx.close()

    @pytest.fixture
    def reopen(self, tmp_path: Path, embedder) -> Iterator[Reopen]:  # type: ignore[no-untyped-def]
        opened: list[QdrantClientIndex] = []

        def again(index: VectorIndex) -> VectorIndex:
            index.close()
            opened.append(_open(tmp_path / "qdrant", embedder.dim))
            return opened[-1]

        yield again
        for idx in opened:
            idx.close()


def test_collection_gets_the_cluster_layout_and_both_vector_kinds(tmp_path: Path) -> None:
    idx = _open(tmp_path / "q", 8, collection="site", shards=6, replication_factor=2, write_consistency=2)
    info = idx.client.get_collection("site")
    dense = info.config.params.vectors["dense"]  # type: ignore[index]
    assert (dense.size, dense.distance.value) == (8, "Cosine")
    # IDF is applied per caller at query time (ingest.index.term_stats), never index-wide
    assert info.config.params.sparse_vectors["bm25"].modifier in (None, models.Modifier.NONE)  # type: ignore[index]
    idx.close()


def test_a_collection_of_the_earlier_format_is_refused_with_a_way_out(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path / "q"))
    client.create_collection(
        "enclave",
        vectors_config={"dense": models.VectorParams(size=8, distance=models.Distance.COSINE)},
        sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    client.close()
    with pytest.raises(ServiceUnavailable, match="enclave index migrate"):
        _open(tmp_path / "q", 8)


def test_a_collection_made_for_another_embedder_is_refused_with_a_way_out(tmp_path: Path) -> None:
    _open(tmp_path / "q", 8).close()
    with pytest.raises(ServiceUnavailable, match="ENCLAVE_INDEX__COLLECTION"):
        _open(tmp_path / "q", 16)


def test_upserts_larger_than_a_batch_arrive_whole(tmp_path: Path) -> None:
    idx = _open(tmp_path / "q", 4, upsert_batch=7)
    records = [record(i, "law", document_id=f"d{i}") for i in range(40)]
    idx.upsert(records, [[1.0, 0.0, 0.0, float(i)] for i in range(40)], [SparseVector([i], [1.0]) for i in range(40)])
    assert idx.count(AccessFilter(tenant="t1")) == 40
    idx.close()


def test_parallel_batches_reach_a_thread_safe_client(tmp_path: Path) -> None:
    """Several batches in flight at once: every point lands, none twice (a lock stands in for the server).

    The first batch waits until a second one arrives (so a pool that reuses one idle thread for every
    batch cannot pass by luck, and a serial adapter fails after the wait)."""
    import threading

    class Serialised:
        def __init__(self, inner: QdrantClient) -> None:
            self.inner, self.lock, self.threads = inner, threading.Lock(), set()
            self.arrived, self.second = 0, threading.Event()

        def upsert(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            with self.lock:
                self.threads.add(threading.current_thread().name)
                self.arrived += 1
                first = self.arrived == 1
            if first:
                self.second.wait(timeout=10)
            else:
                self.second.set()
            with self.lock:
                return self.inner.upsert(*args, **kwargs)

        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(self.inner, name)

    client = Serialised(QdrantClient(":memory:"))
    idx = QdrantClientIndex(4, ClusterConfig(url="http://stand-in", upsert_batch=5, upsert_parallel=4), client=client)  # type: ignore[arg-type]
    idx.warm_up()
    idx.upsert(
        [record(i, "pay", document_id=f"d{i}") for i in range(50)],
        [[1.0, 0.0, 0.0, 0.0]] * 50,
        [SparseVector([1], [1.0])] * 50,
    )
    assert idx.count(AccessFilter(tenant="t1")) == 50
    assert client.second.is_set() and len(client.threads) > 1


def test_the_factory_picks_the_adapter_and_rejects_contradictions(tmp_path: Path) -> None:
    edge = make_settings(tmp_path)
    assert isinstance(make_index(edge, 8), QdrantEdgeIndex)
    cluster = make_settings(
        tmp_path,
        index=IndexSettings(
            backend="qdrant", url="http://qdrant:6333", shards=3, replication_factor=2, write_consistency=2
        ),
    )
    built = make_index(cluster, 8)
    assert (
        isinstance(built, QdrantClientIndex) and built.config.shards == 3 and built.config.url == "http://qdrant:6333"
    )
    for bad, says in [
        (IndexSettings(backend="edge", url="http://qdrant:6333"), "ENCLAVE_INDEX__BACKEND=qdrant"),
        (
            IndexSettings(backend="qdrant", url="http://q:6333", replication_factor=2, write_consistency=3),
            "WRITE_CONSISTENCY",
        ),
        (IndexSettings(backend="edge", shards=4), "ENCLAVE_INDEX__SHARDS"),
    ]:
        with pytest.raises(ConfigurationError, match=says):
            make_index(make_settings(tmp_path, index=bad), 8)


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_an_unreachable_server_is_reported_as_unavailable() -> None:
    with socket.socket() as probe:  # a loopback port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    idx = QdrantClientIndex(8, ClusterConfig(url=f"http://127.0.0.1:{port}", timeout_s=1))
    with pytest.raises(ServiceUnavailable, match="did not answer"):
        idx.warm_up()
    assert not idx.healthy()

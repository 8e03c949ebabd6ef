"""Congruence: the same ingest and the same queries against Qdrant Edge (embedded) and the qdrant-client
adapter (here on its in-process mode, standing in for a Qdrant server) give the same top results;
and ``enclave index migrate`` copies an embedded index into a collection that answers the same.

What is compared, and why not more:
- dense: the same ids in the same order with the same scores (both search exactly at this size);
- BM25: the same scores rank by rank, and the same ids wherever a score is not tied (tied points are
  ordered by each engine's internal offsets);
- hybrid: fused with the configured method (DBSF by default; RRF fuses *ranks*, so there a BM25 tie
  ordered differently moves a fused score by about 1/(k+r)^2, ~3e-4); we demand the same top fused
  score, the same best chunk whenever it is ahead by more than FUSED_STEP, and nearly the same top ten.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index.port import AccessFilter, ChunkRecord, SearchResult, SparseVector, VectorIndex
from ingest.index.qdrant_client_index import ClusterConfig, QdrantClientIndex
from ingest.index.qdrant_edge_index import QdrantEdgeIndex
from tests.conftest import DATA, REPO

pytestmark = pytest.mark.filterwarnings("ignore:.*(Payload indexes|Local mode).*:UserWarning")

SCIFACT = DATA / "scifact"
TIE = 1e-4  # scores closer than this are a tie
FUSED_STEP = 1e-3  # larger than any shift a differently ordered BM25 tie causes in a fused score
FILTERS = {
    "tenant": AccessFilter(tenant="t1"),
    "acl": AccessFilter(tenant="t1", collections=("a",), principal_user="ann", principal_groups=("legal",)),
    "wall": AccessFilter(tenant="t1", classifications=("internal",), excluded_groups=("hr",)),
}


@dataclass
class Corpus:
    records: list[ChunkRecord]
    dense: list[list[float]]
    sparse: list[SparseVector]
    queries: list[tuple[list[float], SparseVector]]


def _record(i: int, doc: dict[str, str]) -> ChunkRecord:
    text = f"{doc['title']}. {doc['text']}"[:500]
    return ChunkRecord(
        id=f"00000000-0000-4000-8000-{i:012d}",
        tenant="t2" if i % 5 == 0 else "t1",
        collection="ab"[i % 2],
        document_id=doc["_id"],
        title=doc["title"],
        text=text,
        page=None,
        page_end=None,
        start=0,
        end=len(text),
        ordinal=0,
        classification="privileged" if i % 3 == 0 else "internal",
        acl_groups=(("legal",), (), ("hr",))[i % 3],
        acl_users=("ann",) if i % 7 == 0 else (),
    )


@pytest.fixture(scope="module")
def corpus(embedder) -> Corpus:  # type: ignore[no-untyped-def]
    with (SCIFACT / "corpus.jsonl").open() as lines:
        records = [_record(i, json.loads(line)) for i, line in enumerate(itertools.islice(lines, 80))]
    with (SCIFACT / "queries-test.jsonl").open() as lines:
        questions = [json.loads(line)["text"] for line in itertools.islice(lines, 12)]
    bm25 = QdrantBm25Encoder()
    return Corpus(
        records,
        embedder.embed_passages([r.text for r in records]),
        [bm25.embed_passage(r.text) for r in records],
        [(embedder.embed_query(q), bm25.embed_query(q)) for q in questions],
    )


def _filled(index: VectorIndex, corpus: Corpus) -> VectorIndex:
    index.warm_up()
    index.upsert(corpus.records, corpus.dense, corpus.sparse)
    return index


@pytest.fixture(scope="module")
def edge(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorIndex]:
    index = _filled(QdrantEdgeIndex(tmp_path_factory.mktemp("edge") / "index", len(corpus.dense[0])), corpus)
    yield index
    index.close()


@pytest.fixture(scope="module")
def cluster(corpus: Corpus) -> Iterator[VectorIndex]:
    config = ClusterConfig(shards=3, replication_factor=2, write_consistency=2, upsert_batch=16)
    index = _filled(QdrantClientIndex(len(corpus.dense[0]), config, client=QdrantClient(":memory:")), corpus)
    yield index
    index.close()


def _untied(scores: Sequence[float], rank: int) -> bool:
    """Ahead of the next and behind the previous; the last one may tie with the first left out, so it never counts."""
    if rank + 1 >= len(scores):
        return False
    return all(abs(scores[rank] - scores[j]) > TIE for j in (rank - 1, rank + 1) if j >= 0)


def assert_same_ranking(a: SearchResult, b: SearchResult) -> None:
    """Equal scores rank by rank; equal ids wherever the score is not tied."""
    ids_a, ids_b = [c.record.id for c in a.chunks], [c.record.id for c in b.chunks]
    scores_a, scores_b = [c.score for c in a.chunks], [c.score for c in b.chunks]
    assert scores_a == pytest.approx(scores_b, abs=TIE)
    for rank in range(len(ids_a)):
        if _untied(scores_a, rank) and _untied(scores_b, rank):
            assert ids_a[rank] == ids_b[rank], f"rank {rank}"


def assert_same_fusion(a: SearchResult, b: SearchResult) -> None:
    ids_a, ids_b = [c.record.id for c in a.chunks], [c.record.id for c in b.chunks]
    assert a.chunks[0].score == pytest.approx(b.chunks[0].score, abs=FUSED_STEP)  # same formula, k and weights
    if len(a.chunks) > 1 and a.chunks[0].score - a.chunks[1].score > FUSED_STEP:
        assert ids_a[0] == ids_b[0]
    assert len(set(ids_a) & set(ids_b)) >= 0.8 * len(ids_a)


@pytest.mark.parametrize("scope", FILTERS)
@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_edge_and_cluster_rank_the_same(
    edge: VectorIndex, cluster: VectorIndex, corpus: Corpus, mode: str, scope: str
) -> None:
    access = FILTERS[scope]
    admitted = edge.count(access)
    assert admitted == cluster.count(access) and 0 < admitted < len(corpus.records)
    for dense, sparse in corpus.queries:
        a = edge.search(dense, sparse, access, 10, mode)  # type: ignore[arg-type]
        b = cluster.search(dense, sparse, access, 10, mode)  # type: ignore[arg-type]
        assert a.chunks and a.best_dense_score == pytest.approx(b.best_dense_score, abs=TIE)
        if mode == "hybrid":
            assert_same_fusion(a, b)
        else:
            assert_same_ranking(a, b)
        assert [c.record for c in b.chunks if c.record.id == a.chunks[0].record.id] == [a.chunks[0].record]


def test_enclave_index_migrate_copies_the_embedded_index(corpus: Corpus, tmp_path: Path) -> None:
    """The real command, in its own process: every point arrives with its vectors and payload, and answers the same."""
    data = tmp_path / "data"
    _filled(QdrantEdgeIndex(data / "index", len(corpus.dense[0])), corpus).close()
    target = tmp_path / "cluster"
    env = os.environ | {"ENCLAVE_DATA_DIR": str(data)}
    command = [
        sys.executable,
        "-m",
        "service",
        "index",
        "migrate",
        "--to",
        str(target),
        "--batch",
        "7",
        "--collection",
        "moved",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"copied {len(corpus.records)} points" in done.stdout
    source = QdrantEdgeIndex(data / "index", len(corpus.dense[0]))
    source.warm_up()
    moved = QdrantClientIndex(
        len(corpus.dense[0]), ClusterConfig(collection="moved"), client=QdrantClient(path=str(target))
    )
    moved.warm_up()
    try:
        assert moved.count(AccessFilter(tenant="t1")) == source.count(AccessFilter(tenant="t1"))
        for dense, sparse in corpus.queries[:4]:
            for mode in ("dense", "bm25"):
                assert_same_ranking(
                    source.search(dense, sparse, FILTERS["acl"], 10, mode),  # type: ignore[arg-type]
                    moved.search(dense, sparse, FILTERS["acl"], 10, mode),
                )  # type: ignore[arg-type]
    finally:
        moved.close()
        source.close()

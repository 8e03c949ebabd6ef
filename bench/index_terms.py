"""What keyed term ids and per-caller BM25 statistics cost (security review, findings 3 and 4).

Side by side in one run, on the same chunks and questions, two Qdrant Edge shards:

- **current**: the adapter as shipped — term ids keyed per tenant, IDF computed at query time over
  the chunks the caller's access filter admits (exact counts, cached until the next write), no
  write-ahead log (every write flushed before it returns);
- **earlier**: the format before it — public term ids, one index-wide IDF applied by the engine, a
  write-ahead log, writes not flushed.

Chunks are real text windows from CUAD and SciFact (real BM25 vectors) over four tenants with an ACL on
half of them; dense vectors are random unit vectors (the dense branch costs the same in both and is not
what changed). Reported: write throughput in 64-chunk documents (upsert, then delete older versions,
as ingestion swaps a version in), hybrid and BM25 search latency for a
reader with an ACL filter (cold: term counts not cached; warm: cached), and the time to erase one
document (delete, flush, vacuum).

    .venv/bin/python -m bench.index_terms --sizes 10k,50k
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from bench.common import (
    format_table,
    human,
    load_sources,
    parse_sizes,
    percentiles,
    ratio,
    real_queries,
    sample_chunks,
    say,
    write_json,
)
from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index.port import AccessFilter, ChunkRecord, SparseVector
from ingest.index.qdrant_edge_index import DENSE, SPARSE, QdrantEdgeIndex, payload_of
from ingest.keys.terms import key_vector, term_key

DIM = 384
DOC = 64  # chunks per document (one write)
TENANTS = ("t0", "t1", "t2", "t3")
KEYS = {t: bytes([i + 1]) * 32 for i, t in enumerate(TENANTS)}


class EarlierEdgeIndex(QdrantEdgeIndex):
    """The adapter as it was: index-side IDF over public ids, a write-ahead log, no flush per write."""

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self._dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=self._hnsw,
        )

    def warm_up(self) -> None:
        self._path.mkdir(parents=True, exist_ok=True)
        self._shard = qe.EdgeShard.create(str(self._path), self._config())
        self._ensure_payload_indexes()
        self.idf.weigh = lambda access, query: query  # type: ignore[method-assign]

    def _write(self, operation: qe.UpdateOperation, *, durable: bool) -> None:
        with self._write_lock:
            self.shard.update(operation)

    def upsert(
        self, records: Sequence[ChunkRecord], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVector]
    ) -> None:
        points = [
            qe.Point(
                id=r.id,
                vector={DENSE: list(map(float, v)), SPARSE: qe.SparseVector(s.indices, s.values)},
                payload=payload_of(r),
            )
            for r, v, s in zip(records, dense, sparse, strict=True)
        ]
        self._write(qe.UpdateOperation.upsert_points(points), durable=False)


def _corpus(n: int, seed: int) -> tuple[list[ChunkRecord], np.ndarray, list[SparseVector]]:
    bm25 = QdrantBm25Encoder()
    chunks = sample_chunks(load_sources(max_abstracts=3000), n, seed)
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((n, DIM)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    records = []
    for i, chunk in enumerate(chunks):
        doc = i // DOC
        records.append(
            ChunkRecord(
                id=f"00000000-0000-4000-8000-{i:012d}",
                tenant=TENANTS[doc % len(TENANTS)],
                collection="c",
                document_id=f"d{doc}",
                title=chunk.title,
                text="",
                page=None,
                page_end=None,
                start=0,
                end=1,
                ordinal=i % DOC,
                acl_groups=("legal",) if doc % 2 else (),
            )
        )
    return records, dense, [bm25.embed_passage(c.text) for c in chunks]


def _write_all(
    index: QdrantEdgeIndex, records: list[ChunkRecord], dense: np.ndarray, sparse: list[SparseVector], keyed: bool
) -> float:
    started = time.perf_counter()
    for start in range(0, len(records), DOC):
        part = records[start : start + DOC]
        vectors = sparse[start : start + DOC]
        if keyed:
            vectors = [key_vector(term_key(KEYS[r.tenant]), v) for r, v in zip(part, vectors, strict=True)]
        index.upsert(part, dense[start : start + DOC].tolist(), vectors)
        index.delete_document(part[0].tenant, part[0].document_id, keep_version=1)  # as a swap ends
    return time.perf_counter() - started


def _search(
    index: QdrantEdgeIndex, queries: list[tuple[list[float], SparseVector]], mode: str, keyed: bool, cold: bool
) -> dict[str, float]:
    access = AccessFilter(tenant="t1", principal_user="bench", principal_groups=("staff",))
    samples = []
    for dense, sparse in queries:
        if keyed:
            sparse = key_vector(term_key(KEYS["t1"]), sparse)
        if cold:
            index.idf.invalidate()
        started = time.perf_counter()
        index.search(dense, sparse, access, 10, mode)  # type: ignore[arg-type]
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def _erase(index: QdrantEdgeIndex, document: str) -> float:
    started = time.perf_counter()
    index.delete_document("t1", document)
    index.flush()
    index.optimize()
    return (time.perf_counter() - started) * 1000


def run(sizes: list[int], n_queries: int, seed: int) -> dict[str, Any]:
    bm25 = QdrantBm25Encoder()
    rng = np.random.default_rng(seed + 1)
    questions = real_queries(n=n_queries, seed=seed)
    queries = []
    for q in questions:
        vec = rng.standard_normal(DIM).astype(np.float32)
        queries.append(((vec / np.linalg.norm(vec)).tolist(), bm25.embed_query(q)))
    rows: list[dict[str, Any]] = []
    for n in sizes:
        say(f"{human(n)}: sampling and encoding {n} chunks")
        records, dense, sparse = _corpus(n, seed)
        root = Path(tempfile.mkdtemp(prefix="enclave-bench-terms-"))
        try:
            for name, cls, keyed in (("earlier", EarlierEdgeIndex, False), ("current", QdrantEdgeIndex, True)):
                index = cls(root / name, DIM)
                index.warm_up()
                say(f"{human(n)} {name}: writing")
                write_s = _write_all(index, records, dense, sparse, keyed)
                index.optimize()  # both searched as built and optimised, as after a bulk load
                row: dict[str, Any] = {"chunks": n, "format": name, "write_chunks_per_s": round(n / write_s, 1)}
                for mode in ("hybrid", "bm25"):
                    say(f"{human(n)} {name}: {mode} search")
                    if name == "current":
                        row[f"{mode}_cold"] = _search(index, queries, mode, keyed, cold=True)
                    row[f"{mode}_warm"] = _search(index, queries, mode, keyed, cold=False)
                row["erase_one_document_ms"] = round(_erase(index, "d1"), 1)
                index.close()
                rows.append(row)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return {"rows": rows}


def _table(rows: list[dict[str, Any]]) -> str:
    by = {(r["chunks"], r["format"]): r for r in rows}
    out = []
    for (n, name), r in by.items():
        earlier = by.get((n, "earlier"))
        out.append(
            [
                human(n),
                name,
                r["write_chunks_per_s"],
                r.get("hybrid_cold", {}).get("p50", "–"),
                r["hybrid_warm"]["p50"],
                r["hybrid_warm"]["p95"],
                r.get("bm25_cold", {}).get("p50", "–"),
                r["bm25_warm"]["p50"],
                r["erase_one_document_ms"],
                ratio(earlier["hybrid_warm"]["p50"], r["hybrid_warm"]["p50"]) if earlier else "–",
            ]
        )
    return format_table(
        [
            "chunks",
            "format",
            "write chunks/s",
            "hybrid cold p50 ms",
            "hybrid warm p50 ms",
            "hybrid warm p95",
            "bm25 cold p50",
            "bm25 warm p50",
            "erase 1 doc ms",
            "earlier/this hybrid p50",
        ],
        out,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,50k")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = run(parse_sizes(args.sizes), args.queries, args.seed)
    print(_table(result["rows"]))
    path = write_json("index-terms", {"args": vars(args), **result})
    say(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Index footprint and HNSW quality: RSS delta of opening and querying an index in a fresh process,
bytes on disk, and recall@10 of the HNSW search against exact search on the same vectors.

Run as a child (``python -m bench.indexstats PATH QUERIES.npy``) so the RSS delta holds nothing but
the index: the parent has the embedder, the server its own heap.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from bench.common import REPO, dir_bytes
from ingest.config import IndexSettings
from ingest.index.port import AccessFilter
from ingest.index.qdrant_edge_index import DENSE, SPARSE, QdrantEdgeIndex, access_filter

DIM = 384


def quantized_config(dim: int = DIM, m: int = 16, ef_construct: int = 100) -> qe.EdgeConfig:
    """The adapter's layout with int8 scalar quantisation: quantised vectors pinned in RAM, the float32
    originals left on disk (memory-mapped, read only to rescore the top candidates) — Qdrant's usual
    memory-saving setup."""
    sq: Any = qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=0.99, always_ram=True)
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine, on_disk=True)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        hnsw_config=qe.HnswIndexConfig(m=m, ef_construct=ef_construct, full_scan_threshold=10_000),
        quantization_config=sq,
    )


def create_quantized(path: Path, dim: int = DIM) -> None:
    """Create an empty shard with scalar quantisation; the adapter then opens it and keeps its config."""
    path.mkdir(parents=True, exist_ok=True)
    shard = qe.EdgeShard.create(str(path), quantized_config(dim))
    shard.close()


def rescoring_params(hnsw_ef: int | None = None, oversampling: float = 2.0) -> qe.SearchParams:
    """HNSW on the quantised vectors, then rescore ``oversampling × k`` candidates with the originals."""
    return qe.SearchParams(
        hnsw_ef=hnsw_ef or IndexSettings().hnsw_ef,
        quantization=qe.QuantizationSearchParams(rescore=True, oversampling=oversampling),
    )


def _dense_top(shard: qe.EdgeShard, vec: list[float], flt: qe.Filter, k: int, params: qe.SearchParams) -> list[str]:
    req = qe.QueryRequest(
        limit=k, query=qe.Query.Nearest(vec, using=DENSE), filter=flt, params=params, with_payload=False
    )
    return [str(p.id) for p in shard.query(req)]


def recall_at_k(
    index: QdrantEdgeIndex,
    queries: np.ndarray,
    access: AccessFilter,
    k: int = 10,
    approx: qe.SearchParams | None = None,
) -> float:
    """Mean overlap of HNSW top-``k`` with exact top-``k`` under the same filter (1.0 = identical).

    ``approx`` defaults to what the service uses (``ENCLAVE_INDEX__HNSW_EF``); exact search reads the float32
    originals, so for a quantised index this is recall against the true neighbours.
    """
    flt = access_filter(access)
    approx, exact = (
        approx or qe.SearchParams(hnsw_ef=IndexSettings().hnsw_ef),
        qe.SearchParams(exact=True, quantization=qe.QuantizationSearchParams(ignore=True)),
    )
    hits = total = 0
    for row in queries:
        vec = [float(x) for x in row]
        truth = set(_dense_top(index.shard, vec, flt, k, exact))
        hits += len(truth & set(_dense_top(index.shard, vec, flt, k, approx)))
        total += len(truth)
    return round(hits / total, 4) if total else float("nan")


def measure_footprint(index_dir: Path, queries_npy: Path, quantized: bool = False) -> dict[str, Any]:
    """Open the index in a child process, query it, and report RSS deltas (MiB) and disk bytes.

    The child first opens and queries an *empty* index of the same configuration, so the engine's
    fixed cost (thread pools, allocator arenas) is reported apart from what the data costs.
    """
    cmd = [sys.executable, "-m", "bench.indexstats", str(index_dir), str(queries_npy)] + (
        ["--quantized"] if quantized else []
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"index footprint probe failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _open_and_query(index_dir: Path, queries: np.ndarray) -> tuple[int, int]:
    """(RSS after opening and querying, points) for one index; the index is closed again."""
    import psutil

    from ingest.index.port import SparseVector

    index = QdrantEdgeIndex(index_dir, queries.shape[1])
    index.warm_up()
    for row in queries:
        index.search([float(x) for x in row], SparseVector([], []), AccessFilter(tenant="default"), 10, mode="dense")
    rss = psutil.Process().memory_info().rss
    points = index.count(AccessFilter(tenant="default"))
    index.close()
    return rss, points


def _child(index_dir: Path, queries_npy: Path, quantized: bool) -> dict[str, Any]:
    import tempfile

    import psutil

    queries = np.load(queries_npy)
    before = psutil.Process().memory_info().rss
    with tempfile.TemporaryDirectory() as tmp:
        empty_dir = Path(tmp) / "index"
        if quantized:
            create_quantized(empty_dir, queries.shape[1])
        rss_empty, _ = _open_and_query(empty_dir, queries)
        empty_disk = dir_bytes(empty_dir)
    rss_full, points = _open_and_query(index_dir, queries)
    mib = 2**20
    return {
        "points": points,
        "engine_overhead_mib": round((rss_empty - before) / mib, 1),
        "rss_data_mib": round((rss_full - rss_empty) / mib, 1),
        "disk_bytes": dir_bytes(index_dir),
        "disk_data_bytes": dir_bytes(index_dir) - empty_disk,
    }


if __name__ == "__main__":
    print(json.dumps(_child(Path(sys.argv[1]), Path(sys.argv[2]), "--quantized" in sys.argv[3:])))

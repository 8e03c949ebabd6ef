"""Qdrant Edge adapter: the Qdrant engine in-process, one shard under the data directory.

The shard keeps no write-ahead log, so a deleted chunk leaves no copy behind in a log that erasure
cannot reach. Deletes are flushed to the segments before they return; upserts at the next flush,
delete or close (a document version's swap ends with a delete, so each ingested version is durable
once, before its job is marked done). The ingest worker completes a batch's documents inside
:meth:`QdrantEdgeIndex.deferred_flush` and flushes once after them, still before any is marked done.
Deleted points stay in their segment until :meth:`QdrantEdgeIndex.optimize` vacuums it (erasure
calls it; the vacuum thresholds are zero, so any deletion qualifies). BM25 IDF is applied per caller
at query time (:mod:`ingest.index.term_stats`), not by the index.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import qdrant_edge as qe

from ingest.errors import ServiceUnavailable
from ingest.index.port import (
    AccessFilter,
    ChunkRecord,
    ScoredChunk,
    SearchMode,
    SearchResult,
    SparseVector,
)
from ingest.index.term_stats import TERMS_FIELD, ScopedIdf

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "bm25"
KEYWORD_FIELDS = ("document_id", "collection", "acl_groups", "acl_users", "classification")
HIDDEN_PAYLOAD = qe.PayloadSelector.Exclude([TERMS_FIELD])
UPGRADE_BATCH = 512
# segments up to this size (KB of dense vectors, ~6,700 at 384 dimensions) are scanned; larger ones get an HNSW graph
FULL_SCAN_KB = 10_000

# Rewrites a stored sparse vector for the current format (the sealed index keys its term ids per tenant).
TermRemap = Callable[[str, SparseVector], SparseVector]


@dataclass(frozen=True)
class HybridConfig:
    """How the dense and BM25 branches are fused (chosen by measurement: see README, "Retrieval quality").

    DBSF (distribution-based score fusion) normalises each branch's scores by the mean ± 3 standard
    deviations of its candidates and adds them; on SciFact train it beat every RRF setting tried
    (k 2–100, branch weights 0.8–1.5). ``depth`` is how many candidates each branch contributes (at
    least the requested limit); DBSF's normalisation depends on it, so ``enclave eval`` (300 chunks)
    and a 3-source answer rank from the same candidate lists. ``rrf_k`` and the weights apply to RRF.
    """

    method: Literal["rrf", "dbsf"] = "dbsf"  # dbsf: scores normalised per branch (mean ± 3 sd), summed
    rrf_k: int = 60  # rrf only
    dense_weight: float = 1.0  # rrf only
    sparse_weight: float = 1.0  # rrf only
    depth: int = 300


class QdrantEdgeIndex:
    """:class:`~ingest.index.port.VectorIndex` on ``qdrant-edge-py``.

    Writes are serialised by a lock (one shard, one writer); searches run concurrently.
    """

    def __init__(
        self,
        path: Path,
        dim: int,
        *,
        hnsw_m: int = 16,
        ef_construct: int = 100,
        hnsw_ef: int = 128,
        hybrid: HybridConfig | None = None,
        full_scan_kb: int = FULL_SCAN_KB,
        search_threads: int = 1,
    ) -> None:
        """``search_threads``: the shard's search pool, which reads one request's segments in parallel (the
        library's default is one thread per CPU). One is faster on 2 cores, alone and under concurrent searches
        (README "Performance"): the parallelism of a server is its concurrent requests."""
        self._path = path
        self._search_threads = search_threads
        self.hybrid = hybrid or HybridConfig()
        self._dim = dim
        self._full_scan_kb = full_scan_kb
        self._unindexed_after_build = 0  # dense vectors left without a graph by the last optimize
        self._hnsw = qe.HnswIndexConfig(m=hnsw_m, ef_construct=ef_construct, full_scan_threshold=full_scan_kb)
        self._params = qe.SearchParams(hnsw_ef=hnsw_ef)
        self._shard: qe.EdgeShard | None = None
        self._write_lock = threading.Lock()
        self._deferring = threading.local()  # see deferred_flush
        # no age limit on cached term counts: the shard is locked to this process (see warm_up) and every write
        # goes through _write, which drops them; their age is for an index other processes write to
        self.idf = ScopedIdf(self.count, self._count_term, max_age_s=math.inf)
        self.legacy_terms: TermRemap | None = None  # set by a wrapper that re-keys term ids on upgrade

    # -- lifecycle -------------------------------------------------------------------------------
    def warm_up(self) -> None:
        if self._shard is not None:
            return
        self._finish_interrupted_upgrade()
        self._path.mkdir(parents=True, exist_ok=True)
        config = self._config()
        try:
            if is_legacy(self._path):
                self._upgrade_legacy()
            if any(self._path.iterdir()):
                self._shard = qe.EdgeShard.load(str(self._path), config)
            else:
                self._shard = qe.EdgeShard.create(str(self._path), config)
        except Exception as exc:
            if "WouldBlock" in str(exc):
                raise ServiceUnavailable(
                    f"the index at {self._path} is open in another Enclave process (is `enclave serve` running?); "
                    "stop it, or upload through its API (POST /v1/documents)"
                ) from exc
            raise
        self._ensure_payload_indexes()
        self.idf.invalidate()  # counts taken before a close, when another process may have written

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self._dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams()},  # no index-side IDF: see term_stats
            hnsw_config=self._hnsw,
            wal_enabled=False,
            optimizers=qe.EdgeOptimizersConfig(
                deleted_threshold=0.0, vacuum_min_vector_number=0, indexing_threshold=self._full_scan_kb
            ),
            max_search_threads=self._search_threads,
        )

    # -- upgrade of an index written by an earlier Enclave ---------------------------------------
    def _staging(self) -> tuple[Path, Path]:
        return self._path.with_name(self._path.name + ".upgrading"), self._path.with_name(self._path.name + ".upgraded")

    def _finish_interrupted_upgrade(self) -> None:
        staging, done = self._staging()
        if done.exists() and staging.is_dir():
            if self._path.exists():
                shutil.rmtree(self._path)
            staging.rename(self._path)
        elif staging.exists():
            shutil.rmtree(staging)  # an upgrade that stopped half-way: the old index is intact, start over
        done.unlink(missing_ok=True)

    def _upgrade_legacy(self) -> None:
        """Rewrite a shard of the earlier format (write-ahead log, index-wide IDF, public term ids).

        Points are copied with their vectors and payload into a fresh shard beside it (term ids
        re-keyed by :attr:`legacy_terms` when set), which then replaces the old one; the old
        directory, log included, is deleted. Nothing is re-embedded.
        """
        staging, done = self._staging()
        log.warning("index.upgrade path=%s: rewriting the index in the current format", self._path)
        source = qe.EdgeShard.load(str(self._path))
        target = qe.EdgeShard.create(str(staging), self._config())
        copied = 0
        offset: Any = None
        while True:
            points, offset = source.scroll(
                qe.ScrollRequest(limit=UPGRADE_BATCH, offset=offset, with_payload=True, with_vector=True)
            )
            batch = [self._upgraded(point) for point in points]
            if batch:
                target.update(qe.UpdateOperation.upsert_points(batch))
                copied += len(batch)
            if offset is None:
                break
        target.flush()
        target.close()
        source.close()
        done.touch()
        shutil.rmtree(self._path)
        staging.rename(self._path)
        done.unlink()
        log.warning("index.upgraded path=%s points=%d", self._path, copied)

    def _upgraded(self, point: Any) -> qe.Point:
        vectors = point.vector if isinstance(point.vector, dict) else {}
        payload = dict(point.payload or {})
        stored = vectors.get(SPARSE)
        sparse = SparseVector(list(stored.indices), list(stored.values)) if stored is not None else SparseVector([], [])
        if self.legacy_terms is not None:
            sparse = self.legacy_terms(str(payload.get("tenant", "")), sparse)
        payload[TERMS_FIELD] = sparse.indices
        return qe.Point(
            id=point.id,
            vector={DENSE: list(vectors[DENSE]), SPARSE: qe.SparseVector(sparse.indices, sparse.values)},
            payload=payload,
        )

    def _ensure_payload_indexes(self) -> None:
        existing = set(self.shard.info().payload_schema)
        if "tenant" not in existing:
            self.shard.update(qe.UpdateOperation.create_field_index("tenant", qe.KeywordIndexParams(is_tenant=True)))
        for name in KEYWORD_FIELDS:
            if name not in existing:
                self.shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        if "version" not in existing:
            self.shard.update(qe.UpdateOperation.create_field_index("version", qe.PayloadSchemaType.Integer))
        if TERMS_FIELD not in existing:
            self.shard.update(qe.UpdateOperation.create_field_index(TERMS_FIELD, qe.PayloadSchemaType.Integer))

    @property
    def shard(self) -> qe.EdgeShard:
        if self._shard is None:
            raise ServiceUnavailable("the vector index is not open; call warm_up() first")
        return self._shard

    def flush(self) -> None:
        with self._write_lock:
            self.shard.flush()

    def close(self) -> None:
        if self._shard is not None:
            with self._write_lock:
                self._shard.flush()
                self._shard.close()
            self._shard = None

    def healthy(self) -> bool:
        try:
            self.shard.info()
        except Exception:  # noqa: BLE001 - any engine failure means "not ready"
            return False
        return True

    def optimize(self) -> bool:
        """Vacuum every segment holding a deleted point, merge segments, and build the HNSW graph of every
        segment past ``full_scan_kb`` (used by erasure, :func:`ingest.index.maintenance.build_graph_if_due`
        and benchmarks)."""
        with self._write_lock:
            changed = self.shard.optimize()
            self.shard.flush()
            self._unindexed_after_build = self.unindexed()
            return changed

    def unindexed(self) -> int:
        """Dense vectors in no HNSW graph: searched by a full scan until :meth:`optimize` builds theirs.

        The engine counts every point's sparse vector as indexed (an inverted index is built as points
        arrive) and a dense vector once its segment has a graph, so the dense share is the indexed count
        less the points."""
        info = self.shard.info()
        return max(0, 2 * info.points_count - info.indexed_vectors_count)

    def graph_due(self) -> bool:
        """Whether ``full_scan_kb`` of dense vectors more than after the last :meth:`optimize` lack a graph.

        Qdrant Edge runs no background optimiser: without a call to :meth:`optimize` every dense search
        scans every vector (2.8 ms per search at 37,690 chunks; 0.2-1.0 ms with the graph). Counting from
        what the last optimize left bounds how often a graph-less remainder (segments the engine would
        rather scan) brings the rewrite back."""
        grown = self.unindexed() - self._unindexed_after_build
        return grown * self._dim * 4 >= self._full_scan_kb * 1024

    @contextmanager
    def deferred_flush(self) -> Iterator[None]:
        """Updates made by this thread inside the block leave their flush to the caller, who flushes once after it.

        For the ingest worker completing several documents: one flush instead of one per document
        (about 21 ms each). Other threads' deletes (erasure) still flush before they return, and
        persist what is pending here with theirs.
        """
        self._deferring.on = True
        try:
            yield
        finally:
            self._deferring.on = False

    def _write(self, operation: qe.UpdateOperation, *, durable: bool) -> None:
        """Apply one update (flushed before returning when ``durable``, unless deferred) and drop cached term counts."""
        with self._write_lock:
            try:
                self.shard.update(operation)
                if durable and not getattr(self._deferring, "on", False):
                    self.shard.flush()
            finally:
                self.idf.invalidate()

    # -- writes ----------------------------------------------------------------------------------
    def upsert(
        self, records: Sequence[ChunkRecord], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVector]
    ) -> None:
        points = [
            qe.Point(
                id=record.id,
                vector={DENSE: list(map(float, vec)), SPARSE: qe.SparseVector(sp.indices, sp.values)},
                payload=payload_of(record) | {TERMS_FIELD: list(sp.indices)},
            )
            for record, vec, sp in zip(records, dense, sparse, strict=True)
        ]
        if points:
            self._write(qe.UpdateOperation.upsert_points(points), durable=False)

    def delete_document(self, tenant: str, document_id: str, *, keep_version: int | None = None) -> None:
        must: list[Any] = [_match("tenant", tenant), _match("document_id", document_id)]
        must_not: list[Any] | None = [_match("version", keep_version)] if keep_version is not None else None
        self._write(qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=must, must_not=must_not)), durable=True)

    # -- reads -----------------------------------------------------------------------------------
    def search(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        access: AccessFilter,
        limit: int,
        mode: SearchMode = "hybrid",
        *,
        best_dense: bool = True,
    ) -> SearchResult:
        flt = access_filter(access)
        if mode != "dense":
            sparse = self.idf.weigh(access, sparse)
        dense_q = qe.Query.Nearest(list(map(float, dense)), using=DENSE)
        sparse_q = qe.Query.Nearest(qe.SparseVector(sparse.indices, sparse.values), using=SPARSE)
        main = self._main_request(mode, dense_q, sparse_q, flt, limit)
        if not best_dense:
            return SearchResult(chunks=[_scored(p) for p in self.shard.query(main)])
        top_dense = qe.QueryRequest(limit=1, query=dense_q, filter=flt, params=self._params, with_payload=False)
        ranked, best = self.shard.query_batch(qe.QueryBatchRequest([main, top_dense]))
        best_score = best[0].score if best else None
        return SearchResult(chunks=[_scored(p) for p in ranked], best_dense_score=best_score)

    def _main_request(
        self, mode: SearchMode, dense_q: Any, sparse_q: Any, flt: qe.Filter, limit: int
    ) -> qe.QueryRequest:
        if mode == "dense":
            return qe.QueryRequest(
                limit=limit, query=dense_q, filter=flt, params=self._params, with_payload=HIDDEN_PAYLOAD
            )
        if mode == "bm25":
            return qe.QueryRequest(limit=limit, query=sparse_q, filter=flt, with_payload=HIDDEN_PAYLOAD)
        cfg = self.hybrid
        depth = max(limit, cfg.depth)
        prefetches = [
            qe.Prefetch(limit=depth, query=dense_q, filter=flt, params=self._params),
            qe.Prefetch(limit=depth, query=sparse_q, filter=flt),
        ]
        # the stub's query type omits Fusion's inner classes
        fusion: Any = (
            qe.Fusion.Dbsf()
            if cfg.method == "dbsf"
            else qe.Fusion.Rrf(k=cfg.rrf_k, weights=[cfg.dense_weight, cfg.sparse_weight])
        )
        return qe.QueryRequest(
            limit=limit, query=fusion, prefetches=prefetches, filter=flt, with_payload=HIDDEN_PAYLOAD
        )

    def count(self, access: AccessFilter) -> int:
        return int(self.shard.count(qe.CountRequest(filter=access_filter(access), exact=True)))

    def points(self) -> int:
        """Every point in the shard, whatever its tenant."""
        return int(self.shard.count(qe.CountRequest(exact=True)))

    def _count_term(self, access: AccessFilter, term: int) -> int:
        flt = access_filter(access)
        flt = qe.Filter(must=[flt, qe.FieldCondition(key=TERMS_FIELD, match=qe.MatchValue(term))])
        return int(self.shard.count(qe.CountRequest(filter=flt, exact=True)))


def is_legacy(path: Path) -> bool:
    """Whether ``path`` holds a shard of the earlier format (index-side IDF over public term ids, a write-ahead log)."""
    stored = path / "edge_config.json"
    if not stored.is_file():
        return False
    config = json.loads(stored.read_text())
    modifier = (config.get("sparse_vectors") or {}).get(SPARSE, {}).get("modifier")
    return modifier == "idf" or config.get("wal_enabled", True) is not False


def _match(key: str, value: str | int) -> qe.FieldCondition:
    return qe.FieldCondition(key=key, match=qe.MatchValue(value))


def _match_any(key: str, values: Sequence[str]) -> qe.FieldCondition:
    return qe.FieldCondition(key=key, match=qe.MatchAny(list(values)))


def access_filter(access: AccessFilter) -> qe.Filter:
    """Translate an :class:`AccessFilter` into one Qdrant filter (tenant AND scope AND ACL)."""
    must: list[Any] = [_match("tenant", access.tenant)]
    if access.collections is not None:
        must.append(_match_any("collection", access.collections))
    if access.document_ids is not None:
        must.append(_match_any("document_id", access.document_ids))
    if access.classifications is not None:
        must.append(_match_any("classification", access.classifications))
    acl = _acl_condition(access)
    if acl is not None:
        must.append(acl)
    walled: list[Any] | None = [_match_any("acl_groups", access.excluded_groups)] if access.excluded_groups else None
    return qe.Filter(must=must, must_not=walled)


def _acl_condition(access: AccessFilter) -> qe.Filter | None:
    if access.principal_groups is None and access.principal_user is None:
        return None
    should: list[Any] = [
        qe.Filter(
            must=[qe.FieldCondition(key="acl_groups", is_empty=True), qe.FieldCondition(key="acl_users", is_empty=True)]
        )
    ]
    if access.principal_groups:
        should.append(_match_any("acl_groups", access.principal_groups))
    if access.principal_user:
        should.append(_match("acl_users", access.principal_user))
    return qe.Filter(should=should)


def payload_of(record: ChunkRecord) -> dict[str, Any]:
    """The payload stored beside a chunk's vectors."""
    return {
        "tenant": record.tenant,
        "collection": record.collection,
        "document_id": record.document_id,
        "title": record.title,
        "text": record.text,
        "page": record.page,
        "page_end": record.page_end,
        "start": record.start,
        "end": record.end,
        "ordinal": record.ordinal,
        "version": record.version,
        "classification": record.classification,
        "acl_groups": list(record.acl_groups),
        "acl_users": list(record.acl_users),
        "ocr": record.ocr,
    }


def record_of(point_id: object, payload: dict[str, Any]) -> ChunkRecord:
    """Rebuild a :class:`ChunkRecord` from a stored payload."""
    return ChunkRecord(
        id=str(point_id),
        tenant=payload["tenant"],
        collection=payload["collection"],
        document_id=payload["document_id"],
        title=payload.get("title", ""),
        text=payload.get("text", ""),
        page=payload.get("page"),
        page_end=payload.get("page_end"),
        start=int(payload["start"]),
        end=int(payload["end"]),
        ordinal=int(payload.get("ordinal", 0)),
        version=int(payload.get("version", 1)),
        classification=payload.get("classification", "internal"),
        acl_groups=tuple(payload.get("acl_groups") or ()),
        acl_users=tuple(payload.get("acl_users") or ()),
        ocr=bool(payload.get("ocr", False)),
    )


def _scored(point: qe.ScoredPoint) -> ScoredChunk:
    return ScoredChunk(record=record_of(point.id, point.payload or {}), score=float(point.score))

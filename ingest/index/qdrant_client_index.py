"""Qdrant server/cluster adapter on ``qdrant-client``: the scale-out twin of the Edge adapter.

Same named vectors (``dense`` cosine, ``bm25`` sparse, IDF applied per caller at query time by
:mod:`ingest.index.term_stats`), same payload and payload indexes,
same hybrid query (a dense and a BM25 prefetch, each filtered, fused as configured: DBSF by default,
or weighted RRF), so a site can move from the embedded index to a cluster (``enclave index
migrate``) and get the same answers. The collection is created with the operator's shard count,
replication factor and write consistency. Upserts go out in batches, several at once. Tests run it
on qdrant-client's in-process mode (an injected ``QdrantClient(":memory:")``), checked against Edge
by congruence tests (``tests/ingest/test_index_congruence.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient, models

from ingest.errors import ServiceUnavailable
from ingest.index.port import AccessFilter, ChunkRecord, ScoredChunk, SearchMode, SearchResult, SparseVector
from ingest.index.qdrant_edge_index import DENSE, KEYWORD_FIELDS, SPARSE, HybridConfig, payload_of, record_of
from ingest.index.term_stats import TERMS_FIELD, ScopedIdf

HIDDEN_PAYLOAD = models.PayloadSelectorExclude(exclude=[TERMS_FIELD])

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterConfig:
    """Where the collection lives and how the cluster keeps it (see ``IndexSettings``)."""

    url: str | None = None
    collection: str = "enclave"
    api_key: str | None = None
    timeout_s: float = 10.0
    shards: int = 1
    replication_factor: int = 1
    write_consistency: int = 1
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_ef: int = 128
    upsert_batch: int = 256
    upsert_parallel: int = 4


class QdrantClientIndex:
    """:class:`~ingest.index.port.VectorIndex` on a Qdrant server or cluster.

    ``client`` may be injected (tests pass ``QdrantClient(":memory:")``); otherwise one is made
    from ``config.url`` in :meth:`warm_up`. Writes wait for acknowledgement by the configured
    number of replicas (``write_consistency``), so an acknowledged chunk is searchable.
    """

    def __init__(
        self, dim: int, config: ClusterConfig, *, hybrid: HybridConfig | None = None, client: QdrantClient | None = None
    ) -> None:
        self._dim = dim
        self.config = config
        self.hybrid = hybrid or HybridConfig()
        self._client = client
        self._params = models.SearchParams(hnsw_ef=config.hnsw_ef)
        self.idf = ScopedIdf(self.count, self._count_term)

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def client(self) -> QdrantClient:
        if self._client is None:
            raise ServiceUnavailable("the vector index is not open; call warm_up() first")
        return self._client

    @property
    def collection(self) -> str:
        return self.config.collection

    def warm_up(self) -> None:
        """Connect, create the collection if it is missing, check its shape, add missing payload indexes.

        :raises ServiceUnavailable: the server does not answer, or the collection was made for
            vectors of another size (another embedder).
        """
        if self._client is None:
            self._client = QdrantClient(
                url=self.config.url, api_key=self.config.api_key, timeout=max(1, round(self.config.timeout_s))
            )
        try:
            if not self.client.collection_exists(self.collection):
                self._create_collection()
            self._check_dimension()
            self._check_format()
            self._ensure_payload_indexes()
        except ServiceUnavailable:
            raise
        except Exception as exc:
            raise ServiceUnavailable(
                f"the Qdrant server at {self.config.url} did not answer ({type(exc).__name__}); "
                "check ENCLAVE_INDEX__URL and ENCLAVE_INDEX__API_KEY and that the cluster is up"
            ) from exc

    def _create_collection(self) -> None:
        cfg = self.config
        self.client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=self._dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams()},  # no index-side IDF: see term_stats
            shard_number=cfg.shards,
            replication_factor=cfg.replication_factor,
            write_consistency_factor=cfg.write_consistency,
            hnsw_config=models.HnswConfigDiff(m=cfg.hnsw_m, ef_construct=cfg.hnsw_ef_construct),
        )
        log.info(
            "index.collection_created collection=%s shards=%d replicas=%d",
            self.collection,
            cfg.shards,
            cfg.replication_factor,
        )

    def _check_dimension(self) -> None:
        vectors = self.client.get_collection(self.collection).config.params.vectors
        dense = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if dense is None or dense.size != self._dim:
            found = "no 'dense' vector" if dense is None else f"{dense.size}-dimensional vectors"
            raise ServiceUnavailable(
                f"the Qdrant collection {self.collection!r} holds {found}, but the embedder makes {self._dim}; "
                "point ENCLAVE_INDEX__COLLECTION at another collection or re-index with this embedder"
            )

    def _check_format(self) -> None:
        sparse = self.client.get_collection(self.collection).config.params.sparse_vectors or {}
        params = sparse.get(SPARSE)
        if params is not None and params.modifier == models.Modifier.IDF:
            raise ServiceUnavailable(
                f"the Qdrant collection {self.collection!r} was written by an earlier Enclave (public BM25 term ids, "
                "one IDF for every tenant); point ENCLAVE_INDEX__COLLECTION at a new collection and run "
                "`enclave index migrate` again from the embedded index, or re-ingest into it"
            )

    def _ensure_payload_indexes(self) -> None:
        existing = set(self.client.get_collection(self.collection).payload_schema)
        wanted: dict[str, Any] = {
            "tenant": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
        }
        wanted |= {name: models.PayloadSchemaType.KEYWORD for name in KEYWORD_FIELDS}
        wanted["version"] = models.PayloadSchemaType.INTEGER
        wanted[TERMS_FIELD] = models.PayloadSchemaType.INTEGER
        for name, schema in wanted.items():
            if name not in existing:
                self.client.create_payload_index(self.collection, name, field_schema=schema, wait=True)

    def flush(self) -> None:
        """Nothing to do: every write already waited for the cluster's write-ahead log."""

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def healthy(self) -> bool:
        try:
            return bool(self.client.collection_exists(self.collection))
        except Exception:  # noqa: BLE001 - any client or server failure means "not ready"
            return False

    # -- writes ----------------------------------------------------------------------------------
    def upsert(
        self, records: Sequence[ChunkRecord], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVector]
    ) -> None:
        points = [
            models.PointStruct(
                id=record.id,
                vector={
                    DENSE: list(map(float, vec)),
                    SPARSE: models.SparseVector(indices=sp.indices, values=sp.values),
                },
                payload=payload_of(record) | {TERMS_FIELD: list(sp.indices)},
            )
            for record, vec, sp in zip(records, dense, sparse, strict=True)
        ]
        self.upsert_points(points)

    def upsert_points(self, points: Sequence[models.PointStruct]) -> None:
        """Write points in batches, ``upsert_parallel`` batches in flight at once (one at a time in local mode)."""
        batches = list(_batched(points, self.config.upsert_batch))
        # qdrant-client's local mode (a client without a URL) is plain dictionaries without locks
        workers = min(self.config.upsert_parallel, len(batches)) if self.config.url else 1
        if workers <= 1:
            try:
                for batch in batches:
                    self._upsert_batch(batch)
            finally:
                self.idf.invalidate()
            return
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enclave-upsert") as pool:
                list(pool.map(self._upsert_batch, batches))  # list(): re-raise the first failure here
        finally:
            self.idf.invalidate()

    def _upsert_batch(self, batch: list[models.PointStruct]) -> None:
        self.client.upsert(self.collection, points=batch, wait=True, ordering=models.WriteOrdering.MEDIUM)

    def delete_document(self, tenant: str, document_id: str, *, keep_version: int | None = None) -> None:
        must: list[models.Condition] = [_match("tenant", tenant), _match("document_id", document_id)]
        must_not: list[models.Condition] | None = (
            [_match("version", keep_version)] if keep_version is not None else None
        )
        selector = models.FilterSelector(filter=models.Filter(must=must, must_not=must_not))
        try:
            self.client.delete(
                self.collection, points_selector=selector, wait=True, ordering=models.WriteOrdering.MEDIUM
            )
        finally:
            self.idf.invalidate()

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
        dense_q = models.NearestQuery(nearest=list(map(float, dense)))
        sparse_q = models.NearestQuery(nearest=models.SparseVector(indices=sparse.indices, values=sparse.values))
        main = self._main_request(mode, dense_q, sparse_q, flt, limit)
        if not best_dense:
            (alone,) = self.client.query_batch_points(self.collection, requests=[main])
            return SearchResult(chunks=[_scored(p) for p in alone.points])
        top_dense = models.QueryRequest(
            query=dense_q, using=DENSE, filter=flt, limit=1, params=self._params, with_payload=False
        )
        ranked, best = self.client.query_batch_points(self.collection, requests=[main, top_dense])
        best_score = best.points[0].score if best.points else None
        return SearchResult(chunks=[_scored(p) for p in ranked.points], best_dense_score=best_score)

    def _main_request(
        self,
        mode: SearchMode,
        dense_q: models.NearestQuery,
        sparse_q: models.NearestQuery,
        flt: models.Filter,
        limit: int,
    ) -> models.QueryRequest:
        if mode == "dense":
            return models.QueryRequest(
                query=dense_q, using=DENSE, filter=flt, limit=limit, params=self._params, with_payload=HIDDEN_PAYLOAD
            )
        if mode == "bm25":
            return models.QueryRequest(
                query=sparse_q, using=SPARSE, filter=flt, limit=limit, with_payload=HIDDEN_PAYLOAD
            )
        cfg = self.hybrid
        depth = max(limit, cfg.depth)
        prefetch = [
            models.Prefetch(query=dense_q, using=DENSE, filter=flt, limit=depth, params=self._params),
            models.Prefetch(query=sparse_q, using=SPARSE, filter=flt, limit=depth),
        ]
        fusion: models.Query = (
            models.FusionQuery(fusion=models.Fusion.DBSF)
            if cfg.method == "dbsf"
            else models.RrfQuery(rrf=models.Rrf(k=cfg.rrf_k, weights=[cfg.dense_weight, cfg.sparse_weight]))
        )
        return models.QueryRequest(
            query=fusion, prefetch=prefetch, filter=flt, limit=limit, with_payload=HIDDEN_PAYLOAD
        )

    def count(self, access: AccessFilter) -> int:
        return int(self.client.count(self.collection, count_filter=access_filter(access), exact=True).count)

    def _count_term(self, access: AccessFilter, term: int) -> int:
        flt = models.Filter(must=[access_filter(access), _match(TERMS_FIELD, term)])
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)


def _batched(points: Sequence[models.PointStruct], size: int) -> Iterator[list[models.PointStruct]]:
    for start in range(0, len(points), max(1, size)):
        yield list(points[start : start + size])


def _match(key: str, value: str | int) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _match_any(key: str, values: Sequence[str]) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))


def access_filter(access: AccessFilter) -> models.Filter:
    """The same filter as the Edge adapter's: tenant AND scope AND ACL, minus any ethical wall."""
    must: list[models.Condition] = [_match("tenant", access.tenant)]
    for key, values in (
        ("collection", access.collections),
        ("document_id", access.document_ids),
        ("classification", access.classifications),
    ):
        if values is not None:
            must.append(_match_any(key, values))
    acl = _acl_condition(access)
    if acl is not None:
        must.append(acl)
    walled: list[models.Condition] | None = (
        [_match_any("acl_groups", access.excluded_groups)] if access.excluded_groups else None
    )
    return models.Filter(must=must, must_not=walled)


def _acl_condition(access: AccessFilter) -> models.Filter | None:
    if access.principal_groups is None and access.principal_user is None:
        return None
    unrestricted = models.Filter(
        must=[
            models.IsEmptyCondition(is_empty=models.PayloadField(key="acl_groups")),
            models.IsEmptyCondition(is_empty=models.PayloadField(key="acl_users")),
        ]
    )
    should: list[models.Condition] = [unrestricted]
    if access.principal_groups:
        should.append(_match_any("acl_groups", access.principal_groups))
    if access.principal_user:
        should.append(_match("acl_users", access.principal_user))
    return models.Filter(should=should)


def _scored(point: models.ScoredPoint) -> ScoredChunk:
    return ScoredChunk(record=record_of(point.id, point.payload or {}), score=float(point.score))

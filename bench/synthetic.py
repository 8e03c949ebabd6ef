"""Synthetic corpora at any size, loaded straight into the index port plus matching Document/Chunk rows.

Chunk texts are runs of real words from ../shared/data (so BM25 sees real tokens). Dense vectors
come from a pool of real MiniLM embeddings of the first ``pool`` chunks (cached on disk by content
hash); beyond the pool, chunk ``i`` reuses pool vector ``i mod pool`` plus small Gaussian noise
(σ = 0.02 per dimension, cosine ≈ 0.93 to its origin), renormalised. Every point therefore has a
real-looking neighbourhood without embedding a million texts on two cores.

ACLs: 20 chunks per document; documents cycle through groups ``g1``, groups ``g2``, user
``alice``, and no ACL (tenant-wide), so a reader in ``g1`` may see half of the corpus.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlmodel import Session

from bench.common import CACHE, Source, SyntheticChunk, sample_chunks, say
from ingest.config import Settings
from ingest.documents import chunk_id
from ingest.embedding.port import DenseEmbedder
from ingest.index.port import ChunkRecord
from ingest.runtime import Components, build_components
from ingest.store.models import Chunk, Document, DocumentStatus

CHUNKS_PER_DOC = 20
NOISE_SIGMA = 0.02
BATCH = 1000
ACL_CYCLE: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("g1",), ()),
    (("g2",), ()),
    ((), ("alice",)),
    ((), ()),
)
DOC_NAMESPACE = uuid.UUID("0b3c1d2e-8f4a-4b6c-9d7e-1a2b3c4d5e6f")


@dataclass
class Pool:
    """Real chunks and their real embeddings (unit length, float32)."""

    chunks: list[SyntheticChunk]
    vectors: np.ndarray
    embed_seconds: float = 0.0
    cached: bool = False


@dataclass
class LoadStats:
    chunks: int
    documents: int
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 2)


def embed_text(chunk: SyntheticChunk) -> str:
    """What is embedded for a chunk: a short header (the title) and the text, as ingestion does."""
    return f"{chunk.title}\n{chunk.text}"


def build_pool(embedder: DenseEmbedder, sources: Sequence[Source], n: int, seed: int, cache: Path = CACHE) -> Pool:
    """Sample ``n`` chunks and embed them once; later runs read the vectors from the cache."""
    chunks = sample_chunks(sources, n, seed)
    digest = hashlib.sha256("\x1e".join(embed_text(c) for c in chunks).encode()).hexdigest()[:16]
    path = cache / f"pool-{embedder.model_name}-{n}-{digest}.npy"
    if path.exists():
        return Pool(chunks, np.load(path), cached=True)
    say(f"  embedding a pool of {n} real chunks with {embedder.model_name} (cached afterwards in {cache})")
    started = time.perf_counter()
    vectors = np.zeros((n, embedder.dim), dtype=np.float32)
    for i in range(0, n, 512):
        vectors[i : i + 512] = embedder.embed_passages([embed_text(c) for c in chunks[i : i + 512]])
        say(f"    {min(n, i + 512)}/{n} embedded")
    seconds = time.perf_counter() - started
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return Pool(chunks, vectors, embed_seconds=round(seconds, 1))


def noisy(vectors: np.ndarray, rng: np.random.Generator, sigma: float = NOISE_SIGMA) -> np.ndarray:
    out = vectors + rng.normal(0.0, sigma, size=vectors.shape).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def batches(
    pool: Pool, sources: Sequence[Source], n: int, seed: int
) -> Iterator[tuple[int, list[SyntheticChunk], np.ndarray]]:
    """``(first ordinal, chunks, vectors)`` in batches: the pool first, then fresh texts with noised pool vectors."""
    rng = np.random.default_rng(seed)
    size = len(pool.chunks)
    bounds = sorted({*range(0, n, BATCH), min(size, n), n})
    for start, stop in zip(bounds, bounds[1:], strict=False):
        if stop <= size:
            yield start, pool.chunks[start:stop], pool.vectors[start:stop]
            continue
        texts = sample_chunks(sources, stop - start, seed=seed * 1_000_003 + start)
        rows = np.arange(start, stop) % size
        yield start, texts, noisy(pool.vectors[rows], rng)


def document_id(seed: int, doc: int) -> str:
    return uuid.uuid5(DOC_NAMESPACE, f"{seed}:{doc}").hex


def acl_of(doc: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return ACL_CYCLE[doc % len(ACL_CYCLE)]


def records_for(
    first: int, chunks: Sequence[SyntheticChunk], seed: int, tenant: str, collection: str
) -> list[ChunkRecord]:
    out = []
    for i, chunk in enumerate(chunks, start=first):
        doc, ordinal = divmod(i, CHUNKS_PER_DOC)
        doc_id = document_id(seed, doc)
        groups, users = acl_of(doc)
        start = ordinal * 1000
        out.append(
            ChunkRecord(
                id=chunk_id(doc_id, 1, ordinal),
                tenant=tenant,
                collection=collection,
                document_id=doc_id,
                title=chunk.title,
                text=chunk.text,
                page=None,
                page_end=None,
                start=start,
                end=start + len(chunk.text),
                ordinal=ordinal,
                acl_groups=groups,
                acl_users=users,
            )
        )
    return out


def load(
    components: Components,
    pool: Pool,
    sources: Sequence[Source],
    n: int,
    seed: int = 1,
    tenant: str = "default",
    collection: str = "default",
    with_rows: bool = True,
) -> LoadStats:
    """Upsert ``n`` synthetic chunks through the product's index stack (payloads sealed under per-document
    keys, exactly as ingestion stores them) and, with ``with_rows``, their ready Document/Chunk rows."""
    stats = LoadStats(chunks=n, documents=(n + CHUNKS_PER_DOC - 1) // CHUNKS_PER_DOC)
    components.compliance.keyring.tenant_key(tenant)
    for first, chunks, vectors in batches(pool, sources, n, seed):
        records = records_for(first, chunks, seed, tenant, collection)
        t0 = time.perf_counter()
        sparse_vecs = [components.sparse.embed_passage(embed_text(c)) for c in chunks]
        t1 = time.perf_counter()
        with Session(components.engine) as session:  # keys committed first: a full keyring cache is cleared
            for r in records:
                if r.ordinal == 0:
                    components.compliance.keyring.create_document_key(tenant, r.document_id, session)
            session.commit()
        with Session(components.engine) as session:
            components.index.upsert(records, vectors.tolist(), sparse_vecs)
            t2 = time.perf_counter()
            if with_rows:
                insert_rows(session, records)
            session.commit()
        stats.add("bm25", t1 - t0)
        stats.add("seal+upsert", t2 - t1)
        stats.add("keys+rows", time.perf_counter() - t2)
        if (first // BATCH) % 20 == 0:
            say(f"    {first + len(chunks)}/{n} loaded")
    return stats


def build_site(
    settings: Settings,
    embedder: DenseEmbedder,
    parser: Any,
    pool: Pool,
    sources: Sequence[Source],
    n: int,
    with_rows: bool = True,
) -> tuple[Components, LoadStats]:
    """The product's component stack on ``settings.data_dir`` (left open), loaded with ``n`` synthetic chunks."""
    components = build_components(settings, embedder=embedder, parser=parser)
    stats = load(components, pool, sources, n, with_rows=with_rows)
    optimize(components, stats)
    return components, stats


def optimize(components: Components, stats: LoadStats) -> None:
    """Build the HNSW graph and merge segments (Qdrant Edge runs no background optimiser)."""
    started = time.perf_counter()
    components.index.flush()
    optimizer = getattr(components.index, "optimize", None)
    if optimizer is not None:
        optimizer()
    stats.add("optimize", time.perf_counter() - started)


def raw_index(index: Any) -> Any:
    """The adapter under the product's wrappers (atomic swap, sealing): what recall and footprint probe."""
    while not hasattr(index, "shard") and hasattr(index, "inner"):
        index = index.inner
    return index


def insert_rows(session: Session, records: Sequence[ChunkRecord]) -> None:
    """Ready Document rows (first chunk of each document) and Chunk rows, as ingestion would leave them."""
    docs = [_document_row(r) for r in records if r.ordinal == 0]
    chunks = [
        Chunk(
            id=r.id,
            document_id=r.document_id,
            ordinal=r.ordinal,
            start=r.start,
            end=r.end,
            token_count=len(r.text.split()),
        ).model_dump()
        for r in records
    ]
    if docs:
        session.execute(insert(Document.__table__), docs)  # type: ignore[attr-defined]
    session.execute(insert(Chunk.__table__), chunks)  # type: ignore[attr-defined]


def _document_row(record: ChunkRecord) -> dict[str, Any]:
    doc = Document(
        id=record.document_id,
        tenant=record.tenant,
        collection=record.collection,
        title=record.title[:512],
        filename=f"{record.title[:200]}.txt",
        content_hash=hashlib.sha256(record.document_id.encode()).hexdigest(),
        status=DocumentStatus.ready,
        chunk_count=CHUNKS_PER_DOC,
        version=1,
        acl_json=json.dumps({"groups": list(record.acl_groups), "users": list(record.acl_users)}),
    )
    return doc.model_dump()

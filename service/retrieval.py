"""The read path up to the sources: embed the query, search inside the access filter, re-check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ingest.embedding.port import DenseEmbedder, SparseEncoder
from ingest.index.port import AccessFilter, ScoredChunk, SearchMode, SparseVector, VectorIndex, admits
from ingest.telemetry import span
from service.rerank.port import Reranker
from service.schemas import Citation
from service.snippets import Focus, snippet

EVIDENCE_CHUNKS = 3  # the sources whose words count as evidence (the default k): fixed, so any k gates alike


@dataclass(frozen=True)
class Retrieved:
    """Ranked chunks and the evidence strength: best dense cosine, and ``term_coverage``: the share of
    the question's BM25 terms (stemmed, stopwords dropped) found in the top chunks' titles and text;
    ``query_terms``: those terms, which focus each citation's snippet on the sentences that hold them."""

    chunks: list[ScoredChunk]
    best_dense_score: float | None
    term_coverage: float | None = None
    query_terms: frozenset[int] = frozenset()


class SearchStack(Protocol):
    """What a search needs: both encoders and the index (``ingest.runtime.Components`` has them)."""

    @property
    def embedder(self) -> DenseEmbedder: ...

    @property
    def sparse(self) -> SparseEncoder: ...

    @property
    def index(self) -> VectorIndex: ...


def retrieve(
    components: SearchStack,
    query: str,
    access: AccessFilter,
    k: int,
    mode: SearchMode = "hybrid",
    reranker: Reranker | None = None,
) -> Retrieved:
    """Top-``k`` chunks the caller may see; the filter runs inside the index query.

    With a ``reranker``, the index returns its ``candidates`` and the reranker keeps the best ``k``.
    """
    if access.document_ids is not None and not access.document_ids:
        return Retrieved([], None)  # metadata filters admitted no document
    with span("retrieve", **{"enclave.k": k, "enclave.mode": mode, "enclave.tenant": access.tenant}) as current:
        with span("retrieve.embed_query"):
            dense = components.embedder.embed_query(query)
            sparse = components.sparse.embed_query(query)
        with span("retrieve.search"):
            fetch = max(k, reranker.candidates) if reranker is not None else k
            result = components.index.search(dense, sparse, access, fetch, mode)
        allowed = [c for c in result.chunks if _admitted(c, access)]
        if reranker is not None:
            with span("retrieve.rerank"):
                allowed = reranker.rerank(query, allowed, k)
        current.set_attributes({"enclave.results": len(allowed), "enclave.dropped": len(result.chunks) - len(allowed)})
    coverage = term_coverage(components.sparse, sparse, allowed)
    return Retrieved(allowed, result.best_dense_score, coverage, frozenset(sparse.indices))


def term_coverage(encoder: SparseEncoder, query_terms: SparseVector, chunks: list[ScoredChunk]) -> float | None:
    """Share of the query's terms that occur in the top :data:`EVIDENCE_CHUNKS` chunks (None: no terms or chunks).

    A question whose distinctive words appear in no source ("the CEO's salary" over NDAs) has
    nothing to be answered from, however close its embedding happens to be.
    """
    wanted = set(query_terms.indices)
    if not wanted or not chunks:
        return None
    seen: set[int] = set()
    for chunk in chunks[:EVIDENCE_CHUNKS]:
        seen.update(encoder.embed_passage(f"{chunk.record.title}\n{chunk.record.text}").indices)
    return len(wanted & seen) / len(wanted)


def _admitted(chunk: ScoredChunk, access: AccessFilter) -> bool:
    """Belt and braces: the same rule as the index filter, checked again before a chunk leaves."""
    return admits(access, chunk.record)


def citation(
    chunk: ScoredChunk, marker: int, snippet_chars: int, cited: bool = True, focus: Focus | None = None
) -> Citation:
    """The public form of a source; with ``focus``, its snippet shows the sentences holding the question's terms."""
    record = chunk.record
    return Citation(
        marker=marker,
        document_id=record.document_id,
        title=record.title,
        page=record.page,
        page_end=record.page_end,
        start=record.start,
        end=record.end,
        chunk_start=record.start,
        chunk_end=record.end,
        snippet=snippet(record.text, snippet_chars, focus),
        score=round(chunk.score, 6),
        cited=cited,
        ocr=record.ocr,
    )

"""The read path up to the sources: embed the query, search inside the access filter, re-check."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.index.port import AccessFilter, ScoredChunk, SearchMode, admits
from ingest.runtime import Components
from ingest.telemetry import span
from service.schemas import Citation


@dataclass(frozen=True)
class Retrieved:
    chunks: list[ScoredChunk]
    best_dense_score: float | None


def retrieve(components: Components, query: str, access: AccessFilter, k: int, mode: SearchMode = "hybrid") -> Retrieved:
    """Top-``k`` chunks the caller may see; the filter runs inside the index query."""
    with span("retrieve", **{"enclave.k": k, "enclave.mode": mode, "enclave.tenant": access.tenant}) as current:
        with span("retrieve.embed_query"):
            dense = components.embedder.embed_query(query)
            sparse = components.sparse.embed_query(query)
        with span("retrieve.search"):
            result = components.index.search(dense, sparse, access, k, mode)
        allowed = [c for c in result.chunks if _admitted(c, access)]
        current.set_attributes({"enclave.results": len(allowed), "enclave.dropped": len(result.chunks) - len(allowed)})
    return Retrieved(allowed, result.best_dense_score)


def _admitted(chunk: ScoredChunk, access: AccessFilter) -> bool:
    """Belt and braces: the same rule as the index filter, checked again before a chunk leaves."""
    return admits(access, chunk.record)


def citation(chunk: ScoredChunk, marker: int, snippet_chars: int, cited: bool = True) -> Citation:
    record = chunk.record
    text = record.text
    snippet = text if len(text) <= snippet_chars else text[:snippet_chars].rsplit(" ", 1)[0] + " …"
    return Citation(marker=marker, document_id=record.document_id, title=record.title, page=record.page,
                    page_end=record.page_end, start=record.start, end=record.end, snippet=snippet,
                    score=round(chunk.score, 6), cited=cited, ocr=record.ocr)

"""One factory for the chunk records (and ranked chunks) that unit tests hand to index, answering and rerank code."""

from __future__ import annotations

from typing import Any

from ingest.index.port import ChunkRecord, ScoredChunk


def chunk_record(text: str = "clause", n: int = 1, **fields: Any) -> ChunkRecord:
    """Chunk ``n`` of document ``d{n}``, whose span is the whole of ``text``; ``fields`` override any record field."""
    values: dict[str, Any] = {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "tenant": "t",
        "collection": "c",
        "document_id": f"d{n}",
        "title": f"Doc {n}",
        "text": text,
        "page": None,
        "page_end": None,
        "start": 0,
        "end": len(text),
        "ordinal": 0,
    }
    return ChunkRecord(**(values | fields))


def scored_chunk(
    text: str, n: int = 1, *, score: float = 1.0, dense_score: float | None = None, **fields: Any
) -> ScoredChunk:
    """:func:`chunk_record` ranked with ``score``."""
    return ScoredChunk(chunk_record(text, n, **fields), score, dense_score=dense_score)

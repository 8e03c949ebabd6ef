"""The reranker port: reorder the index's candidates for a question and keep the best ``k``.

Contract: the result is at most ``k`` of the given chunks (never new ones, never duplicates), best
first; each keeps its record (so the access re-check and citations are unchanged) and carries the
reranker's score. ``dense_score`` is kept, because the not-found gate reads it. A reranker that
cannot answer raises :class:`RerankerUnavailable`; it never silently returns the input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ingest.errors import ServiceUnavailable
from ingest.index.port import ScoredChunk


class RerankerUnavailable(ServiceUnavailable):
    """The configured reranker cannot be reached or answered with something unusable."""

    code = "reranker_unavailable"


class Reranker(Protocol):
    """Reorders candidates; ``candidates`` is how many the index should fetch for it."""

    @property
    def candidates(self) -> int: ...

    def rerank(self, query: str, chunks: Sequence[ScoredChunk], k: int) -> list[ScoredChunk]:
        """The best ``k`` of ``chunks`` for ``query``, best first."""
        ...

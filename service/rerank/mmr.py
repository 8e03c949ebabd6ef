"""Maximal marginal relevance: trade a little relevance for sources that do not repeat each other.

Similarity between two chunks is the Jaccard overlap of their BM25 terms (stemmed, stopwords
dropped): near-duplicate clauses (the same boilerplate in ten contracts, or overlapping versions)
share most terms. Relevance is the fused score scaled to [0, 1] over the candidates. No vectors are
fetched or recomputed, so MMR costs a tokenisation per candidate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ingest.embedding.port import SparseEncoder
from ingest.index.port import ScoredChunk


class MmrReranker:
    """:class:`~service.rerank.port.Reranker`: ``lambda_`` 1.0 is pure relevance, 0.0 pure novelty."""

    def __init__(self, encoder: SparseEncoder, lambda_: float = 0.7, candidates: int = 20) -> None:
        self._encoder, self._lambda, self._candidates = encoder, lambda_, candidates

    @property
    def candidates(self) -> int:
        return self._candidates

    def rerank(self, query: str, chunks: Sequence[ScoredChunk], k: int) -> list[ScoredChunk]:
        terms = [frozenset(self._encoder.embed_passage(c.record.text).indices) for c in chunks]
        relevance = _scaled([c.score for c in chunks])
        chosen: list[int] = []
        left = list(range(len(chunks)))
        while left and len(chosen) < k:
            best = max(left, key=lambda i: self._value(i, relevance, terms, chosen))
            chosen.append(best)
            left.remove(best)
        return [
            replace(chunks[i], score=round(self._value(i, relevance, terms, chosen[:n]), 6))
            for n, i in enumerate(chosen)
        ]

    def _value(self, i: int, relevance: list[float], terms: list[frozenset[int]], chosen: list[int]) -> float:
        redundancy = max((_jaccard(terms[i], terms[j]) for j in chosen), default=0.0)
        return self._lambda * relevance[i] - (1 - self._lambda) * redundancy


def _scaled(scores: list[float]) -> list[float]:
    low, high = min(scores, default=0.0), max(scores, default=0.0)
    return [(s - low) / (high - low) if high > low else 1.0 for s in scores]


def _jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0

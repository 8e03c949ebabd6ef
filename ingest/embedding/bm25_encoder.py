"""Sparse BM25 encoder: Qdrant's own BM25 tokenizer and term weights (IDF applied by the index)."""

from __future__ import annotations

import qdrant_edge as qe

from ingest.index.port import SparseVector


class QdrantBm25Encoder:
    """:class:`~ingest.embedding.port.SparseEncoder` using ``qdrant_edge.Bm25`` (English stemming, stopwords)."""

    def __init__(self, avg_len: float = 150.0) -> None:
        self._model = qe.Bm25(qe.Bm25Config(avg_len=avg_len, language="english"))

    def embed_passage(self, text: str) -> SparseVector:
        vec = self._model.embed_document(text)
        return SparseVector(list(vec.indices), list(vec.values))

    def embed_query(self, text: str) -> SparseVector:
        vec = self._model.embed_query(text)
        return SparseVector(list(vec.indices), list(vec.values))

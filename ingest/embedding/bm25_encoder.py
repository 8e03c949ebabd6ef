"""Sparse BM25 encoder: Qdrant's own BM25 tokenizer and term weights (IDF applied by the index)."""

from __future__ import annotations

import qdrant_edge as qe

from ingest.index.port import SparseVector

# Term-frequency saturation, length normalisation and the expected chunk length in BM25 tokens
# (stemmed, stopwords removed): chosen by measurement, see README "Retrieval quality".
BM25_K1 = 0.9
BM25_B = 0.75
BM25_AVG_LEN = 150.0


class QdrantBm25Encoder:
    """:class:`~ingest.embedding.port.SparseEncoder` using ``qdrant_edge.Bm25`` (English stemming, stopwords)."""

    def __init__(self, avg_len: float = BM25_AVG_LEN, k1: float = BM25_K1, b: float = BM25_B) -> None:
        self._params = {"k1": k1, "b": b, "avg_len": avg_len}
        self._model = qe.Bm25(qe.Bm25Config(k=k1, b=b, avg_len=avg_len, language="english"))

    def describe(self) -> dict[str, float | str]:
        """The parameters that shape a stored vector (an index built with others must be rebuilt)."""
        return {"model": "qdrant-bm25-english", **self._params}

    def embed_passage(self, text: str) -> SparseVector:
        vec = self._model.embed_document(text)
        return SparseVector(list(vec.indices), list(vec.values))

    def embed_query(self, text: str) -> SparseVector:
        vec = self._model.embed_query(text)
        return SparseVector(list(vec.indices), list(vec.values))

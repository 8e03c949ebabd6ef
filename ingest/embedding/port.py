"""Embedder ports: dense (semantic) and sparse (lexical BM25) encoders.

Queries and passages share one model so their vectors live in one space. ``tokenizer`` is exposed
because the chunker counts tokens with the embedder's own tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ingest.index.port import SparseVector


class DenseEmbedder(Protocol):
    model_name: str
    dim: int
    max_tokens: int

    def warm_up(self) -> None:
        """Load the model (once)."""

    @property
    def tokenizer(self) -> Any:
        """A Hugging Face fast tokenizer (offsets mapping supported)."""

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors for document chunks, batched."""

    def embed_query(self, text: str) -> list[float]:
        """Unit-length vector for a query."""


class SparseEncoder(Protocol):
    def embed_passage(self, text: str) -> SparseVector:
        """Term-frequency weights for a chunk (IDF applied by the index)."""

    def embed_query(self, text: str) -> SparseVector:
        """One weight per unique query term."""

"""The one place that picks adapters from settings and wires the write path together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from ingest.blobs import BlobStore, LocalBlobStore
from ingest.chunking import TokenChunker
from ingest.compliance import Compliance, build_compliance
from ingest.config import Settings
from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.embedding.port import DenseEmbedder, SparseEncoder
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder
from ingest.index.port import VectorIndex
from ingest.keys.sealed import SealedBlobStore, SealedIndex
from ingest.store.db import create_schema, make_engine

if TYPE_CHECKING:
    from ingest.parsing.port import Parser


@dataclass
class Components:
    """Everything the write and read paths share, created once per process."""

    settings: Settings
    engine: Engine
    embedder: DenseEmbedder
    sparse: SparseEncoder
    index: VectorIndex
    parser: Parser
    blobs: BlobStore
    compliance: Compliance
    chunker: TokenChunker = field(init=False)

    def __post_init__(self) -> None:
        self.chunker = TokenChunker(
            self.embedder.tokenizer, self.settings.chunking.max_tokens, self.settings.chunking.overlap_tokens
        )

    def close(self) -> None:
        self.index.close()
        self.engine.dispose()


def make_index(settings: Settings, dim: int) -> VectorIndex:
    """The configured vector index adapter (not yet opened)."""
    if settings.index.backend == "qdrant":
        raise NotImplementedError("the Qdrant cluster adapter is not part of this build; use ENCLAVE_INDEX__BACKEND=edge")
    from ingest.index.qdrant_edge_index import QdrantEdgeIndex

    cfg = settings.index
    return QdrantEdgeIndex(settings.index_dir, dim, hnsw_m=cfg.hnsw_m, ef_construct=cfg.hnsw_ef_construct, hnsw_ef=cfg.hnsw_ef)


def build_components(settings: Settings, *, embedder: DenseEmbedder | None = None, parser: Parser | None = None) -> Components:
    """Create and warm every write-path component from settings.

    ``embedder`` and ``parser`` may be passed in already warm: they hold no per-site state, so
    one process (a test session, a benchmark) can share them across data directories.
    """
    from ingest.parsing.unstructured_parser import UnstructuredParser

    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    compliance = build_compliance(settings, engine)
    if embedder is None:
        embedder = SentenceTransformerEmbedder(settings.embedder.model_path, settings.embedder.batch_size)
    embedder.warm_up()
    index = SealedIndex(make_index(settings, embedder.dim), compliance.keyring)
    index.warm_up()
    if parser is None:
        parser = UnstructuredParser()
    parser.warm_up()
    blobs = SealedBlobStore(LocalBlobStore(settings.blob_dir / "originals"), compliance.keyring)
    return Components(settings, engine, embedder, QdrantBm25Encoder(), index, parser, blobs, compliance)

"""The one place that picks adapters from settings and wires the write path together."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from ingest.blobs import BlobStore, LocalBlobStore
from ingest.chunking import TokenChunker
from ingest.compliance import Compliance, build_compliance
from ingest.config import IndexSettings, Settings
from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.embedding.identity import check_embedder
from ingest.embedding.onnx_embedder import OnnxEmbedder, OnnxQueries
from ingest.embedding.port import DenseEmbedder, SparseEncoder
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder
from ingest.errors import ConfigurationError
from ingest.index.port import VectorIndex
from ingest.index.qdrant_edge_index import HybridConfig, QdrantEdgeIndex
from ingest.index.swap import AtomicSwapIndex
from ingest.keys.sealed import SealedBlobStore, SealedIndex
from ingest.parsing.isolated import IsolatedParser
from ingest.parsing.unstructured_parser import UnstructuredParser
from ingest.store.db import create_schema, make_engine

if TYPE_CHECKING:
    from pathlib import Path

    from ingest.index.qdrant_client_index import ClusterConfig
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
    owns_parser: bool = False  # built with the components (not passed in shared): closed with them
    chunker: TokenChunker = field(init=False)

    def __post_init__(self) -> None:
        self.chunker = TokenChunker(
            self.embedder.tokenizer, self.settings.chunking.max_tokens, self.settings.chunking.overlap_tokens
        )

    def close(self) -> None:
        self.index.close()
        self.engine.dispose()
        if self.owns_parser:
            self.parser.close()


def make_index(settings: Settings, dim: int) -> VectorIndex:
    """The configured vector index adapter (not yet opened): Qdrant Edge, or a Qdrant server/cluster.

    :raises ConfigurationError: index settings that contradict each other.
    """
    cfg = settings.index
    _reject_index_contradictions(cfg)
    if cfg.backend == "qdrant":
        from ingest.index.qdrant_client_index import QdrantClientIndex  # lazy: qdrant-client, cluster only

        return QdrantClientIndex(dim, cluster_config(cfg))
    return edge_index(cfg, settings.index_dir, dim)


def edge_index(cfg: IndexSettings, path: Path, dim: int, hybrid: HybridConfig | None = None) -> QdrantEdgeIndex:
    """A Qdrant Edge index at ``path`` (not yet opened) with the configured graph and search settings."""
    return QdrantEdgeIndex(
        path,
        dim,
        hnsw_m=cfg.hnsw_m,
        ef_construct=cfg.hnsw_ef_construct,
        hnsw_ef=cfg.hnsw_ef,
        hybrid=hybrid,
        full_scan_kb=cfg.full_scan_kb,
        search_threads=cfg.search_threads,
    )


def cluster_config(cfg: IndexSettings, *, url: str | None = None, collection: str | None = None) -> ClusterConfig:
    """The qdrant-client adapter's configuration from the index settings (``url``/``collection`` override)."""
    from ingest.index.qdrant_client_index import ClusterConfig  # lazy: qdrant-client, cluster only

    return ClusterConfig(
        url=url or cfg.url,
        collection=collection or cfg.collection,
        api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
        timeout_s=cfg.timeout_s,
        shards=cfg.shards,
        replication_factor=cfg.replication_factor,
        write_consistency=cfg.write_consistency,
        hnsw_m=cfg.hnsw_m,
        hnsw_ef_construct=cfg.hnsw_ef_construct,
        hnsw_ef=cfg.hnsw_ef,
        upsert_batch=cfg.upsert_batch,
        upsert_parallel=cfg.upsert_parallel,
    )


def _reject_index_contradictions(cfg: IndexSettings) -> None:
    cluster_only = {
        "URL": cfg.url,
        "API_KEY": cfg.api_key,
        "SHARDS": cfg.shards != 1,
        "REPLICATION_FACTOR": cfg.replication_factor != 1,
        "WRITE_CONSISTENCY": cfg.write_consistency != 1,
    }
    if cfg.backend == "edge":
        for name, value in cluster_only.items():
            if value:
                raise ConfigurationError(
                    f"ENCLAVE_INDEX__{name} applies to a Qdrant server or cluster, but the index is the embedded "
                    "Qdrant Edge: set ENCLAVE_INDEX__BACKEND=qdrant to use the cluster, or unset it"
                )
        return
    if not cfg.url:
        raise ConfigurationError("ENCLAVE_INDEX__BACKEND=qdrant needs ENCLAVE_INDEX__URL (e.g. http://qdrant:6333)")
    if cfg.write_consistency > cfg.replication_factor:
        raise ConfigurationError(
            f"ENCLAVE_INDEX__WRITE_CONSISTENCY={cfg.write_consistency} exceeds ENCLAVE_INDEX__REPLICATION_FACTOR="
            f"{cfg.replication_factor}: no write could ever be acknowledged; lower it or add replicas"
        )


def make_embedder(settings: Settings) -> DenseEmbedder:
    """The configured dense embedder (not yet warm): PyTorch MiniLM (its queries on ONNX Runtime fp32 unless
    ``query_backend`` is ``torch``), or its ONNX export for both (README "Performance")."""
    cfg = settings.embedder
    if cfg.backend == "onnx":
        return OnnxEmbedder(
            settings.data_dir / "models" / "onnx",
            cfg.model_path,
            cfg.onnx_precision,
            batch_size=cfg.forward_batch,
            threads=cfg.threads,
        )
    passages = SentenceTransformerEmbedder(cfg.model_path, cfg.forward_batch, cfg.precision)
    if cfg.query_backend == "torch":
        return passages
    queries = OnnxEmbedder(
        settings.data_dir / "models" / "onnx", cfg.model_path, "fp32", batch_size=1, threads=cfg.threads, spinning=False
    )
    return OnnxQueries(passages, queries)


def build_components(
    settings: Settings,
    *,
    embedder: DenseEmbedder | None = None,
    parser: Parser | None = None,
    embedder_check: bool = True,
    warm_parser: bool = True,
) -> Components:
    """Create and warm every write-path component from settings.

    ``embedder`` and ``parser`` may be passed in already warm: they hold no per-site state, so
    one process (a test session, a benchmark) can share them across data directories.
    ``warm_parser=False`` leaves the parser to load its libraries on the first document that needs
    them: ``enclave ingest`` of plain text then never pays the 3-5 s that importing ``unstructured``
    and loading spaCy take (a long-running service warms it, so no upload waits for them). Built here,
    the parser reads PDFs and office files in a child process (``settings.parser.isolated``,
    :mod:`ingest.parsing.isolated`) and is closed with the components.

    :raises EmbedderMismatch: the index holds vectors of another embedder (``ingest.embedding.identity``).
    """
    settings.ensure_dirs()
    owns_parser = parser is None
    if parser is None:
        parser = IsolatedParser() if settings.parser.isolated else UnstructuredParser()
    if warm_parser:  # an isolated parser's child loads its libraries while this process goes on
        parser.warm_up()
    try:
        engine = make_engine(settings.resolved_database_url)
        create_schema(engine)
        compliance = build_compliance(settings, engine)
        if embedder is None:
            embedder = make_embedder(settings)
        embedder.warm_up()
        if embedder_check:  # off only for `enclave index rebuild`, which replaces the vectors
            check_embedder(engine, embedder)
        index = AtomicSwapIndex(
            SealedIndex(make_index(settings, embedder.dim), compliance.keyring)
        )  # see ingest.index.swap
        index.warm_up()
    except BaseException:
        if owns_parser:
            parser.close()
        raise
    blobs = SealedBlobStore(LocalBlobStore(settings.blob_dir / "originals"), compliance.keyring)
    return Components(
        settings, engine, embedder, QdrantBm25Encoder(), index, parser, blobs, compliance, owns_parser=owns_parser
    )

"""An isolated, reusable index of an evaluation corpus under ``<data dir>/eval/``.

Documents go through the production write path's own pieces — the parser's plain-text path, the
token chunker, the context header and :func:`ingest.documents.embedding_text`, the same dense and
BM25 encoders, the same Qdrant Edge adapter — but in bulk: embeddings are batched *across*
documents, and no originals, SQL rows, keys or audit records are written (evaluation data is
public, and none of those change what a search returns). Redaction is skipped for the same reason.

The index lives in ``<data dir>/eval/<name>-<fingerprint>/`` under its own tenant. The fingerprint
covers the corpus bytes and every setting that shapes a vector, so an unchanged data set is
indexed once and reused; a changed one gets a fresh directory and the stale ones are removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest import preamble
from ingest.chunking import TokenChunker, with_heading
from ingest.config import Settings
from ingest.documents import chunk_id, embedding_text, header_text
from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.embedding.port import DenseEmbedder
from ingest.index.maintenance import build_graph_if_due
from ingest.index.port import ChunkRecord
from ingest.index.qdrant_edge_index import HybridConfig, QdrantEdgeIndex
from ingest.parsing.port import ParsedDocument
from ingest.parsing.sniff import TEXT
from ingest.parsing.unstructured_parser import parse_text
from ingest.runtime import edge_index
from service.evaluation.datasets import CorpusDocument, EvalDataset

log = logging.getLogger(__name__)
EVAL_TENANT = "eval"
EVAL_COLLECTION = "eval"
INDEX_FORMAT = 3  # bump when the way chunks are built or embedded changes
ENCODE_BATCH = 512  # texts per encoder call: across documents, sorted by length inside the call

Progress = Callable[[int, int], None]


@dataclass
class EvalIndex:
    """An opened evaluation index and what a search needs beside it."""

    directory: Path
    index: QdrantEdgeIndex
    embedder: DenseEmbedder
    sparse: QdrantBm25Encoder
    chunks: dict[str, list[tuple[int, int]]]  # document id -> its chunks' [start, end)
    names: dict[str, str] = field(default_factory=dict)  # document id -> the title and parties its opening states
    built: bool = False
    build_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.index.close()

    def names_of(self, document_ids: Sequence[str]) -> dict[str, str]:
        """Document focus's lookup (:data:`service.retrieval.DocumentNames`), as production reads it from the rows."""
        return {d: self.names[d] for d in document_ids if d in self.names}


def fingerprint(dataset: EvalDataset, settings: Settings, embedder: DenseEmbedder, sparse: QdrantBm25Encoder) -> str:
    """Hash of the corpus bytes plus everything that shapes a stored vector."""
    shape = {
        "format": INDEX_FORMAT,
        "corpus": dataset.corpus_digest(),
        "chunking": settings.chunking.model_dump(),
        "embedder": [
            embedder.model_name,
            str(settings.embedder.model_path or ""),
            embedder.dim,
            embedder.max_tokens,
            str(getattr(embedder, "precision", "fp32")),  # bf16 and fp32 vectors are measured apart
        ],
        "bm25": sparse.describe(),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def open_eval_index(
    dataset: EvalDataset,
    settings: Settings,
    embedder: DenseEmbedder,
    *,
    sparse: QdrantBm25Encoder | None = None,
    hybrid: HybridConfig | None = None,
    progress: Progress | None = None,
) -> EvalIndex:
    """Open the data set's index under ``settings.data_dir/eval``, building it first when missing or stale.

    :raises ServiceUnavailable: another process holds this evaluation index open.
    """
    sparse = sparse or QdrantBm25Encoder()
    directory = settings.data_dir / "eval" / f"{dataset.name}-{fingerprint(dataset, settings, embedder, sparse)}"
    manifest = directory / "manifest.json"
    index = edge_index(settings.index, directory / "index", embedder.dim, hybrid)
    if manifest.is_file():
        index.warm_up()
        build_graph_if_due(index)  # searched as production's worker leaves an index (also one built before it did)
        saved = json.loads(manifest.read_text())
        chunk_map, stored_names = _chunk_map(saved["chunks"]), saved.get("names", {})
        return EvalIndex(directory, index, embedder, sparse, chunk_map, stored_names, stats=saved["stats"])
    _remove_stale(directory)
    started = time.perf_counter()
    index.warm_up()
    chunker = TokenChunker(embedder.tokenizer, settings.chunking.max_tokens, settings.chunking.overlap_tokens)
    names: dict[str, str] = {}
    chunks, stats = _build(dataset, chunker, embedder, sparse, index, progress, names)
    index.flush()
    build_graph_if_due(index)
    elapsed = time.perf_counter() - started
    stats["build_s"] = round(elapsed, 1)
    saved = {"dataset": str(dataset.root), "stats": stats, "chunks": chunks, "names": names}
    manifest.write_text(json.dumps(saved))
    return EvalIndex(
        directory, index, embedder, sparse, _chunk_map(chunks), names, built=True, build_s=elapsed, stats=stats
    )


def _chunk_map(saved: dict[str, list[list[int]]]) -> dict[str, list[tuple[int, int]]]:
    return {doc: [(int(a), int(b)) for a, b in spans] for doc, spans in saved.items()}


def _remove_stale(directory: Path) -> None:
    """Earlier builds of the same data set (other fingerprints), and a half-built one of this."""
    name = directory.name.rsplit("-", 1)[0]
    for old in directory.parent.glob(f"{name}-*"):
        if old.is_dir() and old.name.rsplit("-", 1)[0] == name:
            shutil.rmtree(old)


@dataclass(frozen=True)
class _Pending:
    record: ChunkRecord
    text: str


def _prepared(documents: Iterable[CorpusDocument], chunker: TokenChunker, names: dict[str, str]) -> Iterator[_Pending]:
    """Every chunk of every document with the exact text production would embed for it; each document's
    title and parties (what production seals into its row) go into ``names``."""
    for doc in documents:
        if not doc.text.strip():
            continue
        parsed = parse_text(doc.text, TEXT)
        if named := preamble.extract(parsed.text).names:
            names[doc.doc_id] = named
        header = header_text(chunker, doc.title, parsed)
        for span in chunker.chunk(parsed):
            record = _record(doc, parsed, span.ordinal, span.start, span.end)
            yield _Pending(record, embedding_text(header, with_heading(record.text, span.heading)))


def _record(doc: CorpusDocument, parsed: ParsedDocument, ordinal: int, start: int, end: int) -> ChunkRecord:
    return ChunkRecord(
        id=chunk_id(doc.doc_id, 1, ordinal),
        tenant=EVAL_TENANT,
        collection=EVAL_COLLECTION,
        document_id=doc.doc_id,
        title=doc.title,
        text=parsed.text[start:end],
        page=None,
        page_end=None,
        start=start,
        end=end,
        ordinal=ordinal,
    )


def _build(
    dataset: EvalDataset,
    chunker: TokenChunker,
    embedder: DenseEmbedder,
    sparse: QdrantBm25Encoder,
    index: QdrantEdgeIndex,
    progress: Progress | None,
    names: dict[str, str],
) -> tuple[dict[str, list[list[int]]], dict[str, Any]]:
    chunks: dict[str, list[list[int]]] = {}
    batch: list[_Pending] = []
    total = 0
    for pending in _prepared(dataset.documents(), chunker, names):
        batch.append(pending)
        chunks.setdefault(pending.record.document_id, []).append([pending.record.start, pending.record.end])
        if len(batch) >= ENCODE_BATCH:
            total += _flush(batch, embedder, sparse, index)
            batch = []
            if progress is not None:
                progress(total, len(chunks))
    total += _flush(batch, embedder, sparse, index)
    if progress is not None:
        progress(total, len(chunks))
    return chunks, {"documents": len(chunks), "chunks": total}


def _flush(batch: list[_Pending], embedder: DenseEmbedder, sparse: QdrantBm25Encoder, index: QdrantEdgeIndex) -> int:
    if not batch:
        return 0
    texts = [p.text for p in batch]
    dense = embedder.embed_passages(texts)
    index.upsert([p.record for p in batch], dense, [sparse.embed_passage(t) for t in texts])
    return len(batch)

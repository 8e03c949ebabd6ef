"""The ONNX Runtime embedder: exported once from the packaged MiniLM weights (no download), cached by the
weights' hash, and close to the PyTorch embedder on real text; a site refuses to mix the two embedders'
vectors, and ``enclave index rebuild`` moves it from one to the other.

Real components: the packaged model exported with torch.onnx and quantised with onnxruntime, Qdrant
Edge, SQLite, the real parser, documents from the shared fixtures.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import delete

from ingest import documents as docs
from ingest.embedding.identity import EmbedderMismatch, recorded_embedder
from ingest.embedding.onnx_embedder import OnnxEmbedder
from ingest.embedding.sentence_transformers_embedder import MODEL_NAME, SentenceTransformerEmbedder
from ingest.index.port import AccessFilter
from ingest.rebuild import rebuild_index
from ingest.runtime import Components, build_components
from ingest.store.db import session_scope
from ingest.store.models import SiteSetting
from ingest.worker import drain
from tests.conftest import make_settings
from tests.ingest.real_text import real_texts

CONTRACT = (
    "This Agreement is governed by the laws of the State of Delaware. "
    "Either party may terminate it on ninety days' written notice.\n"
)


@pytest.fixture(scope="module")
def onnx(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    model = OnnxEmbedder(tmp_path_factory.mktemp("models"), precision="int8")
    model.warm_up()  # exports and quantises once for the module
    return model


def _texts() -> list[str]:
    return real_texts(slice(0, 12), 150, 60)


def test_int8_vectors_stay_close_to_pytorch_on_real_text(
    onnx: OnnxEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    texts = _texts()
    ours, theirs = np.array(onnx.embed_passages(texts)), np.array(embedder.embed_passages(texts))
    cosine = (ours * theirs).sum(axis=1)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)  # unit length, as the port promises
    assert float(np.median(cosine)) >= 0.99 and float(cosine.min()) >= 0.97, np.percentile(cosine, [0, 1, 50])
    assert onnx.dim == embedder.dim and onnx.max_tokens == embedder.max_tokens
    assert onnx.model_name == f"{MODEL_NAME}+onnx-int8" != embedder.model_name
    query = np.array(onnx.embed_query("which law governs the agreement?"))
    assert query.shape == (embedder.dim,)


def test_the_export_is_cached_by_the_weights_hash(onnx: OnnxEmbedder, tmp_path: Path) -> None:
    graph = onnx.graph_path()
    assert graph.exists() and graph.name.endswith("-int8.onnx") and len(graph.name.split("-")[0]) == 16
    made = graph.stat().st_mtime_ns
    again = OnnxEmbedder(graph.parent, precision="int8")
    again.warm_up()  # same weights: the cached export is loaded, not made again
    assert graph.stat().st_mtime_ns == made and [p.name for p in graph.parent.iterdir()] == [graph.name]
    assert again.embed_query(CONTRACT) == onnx.embed_query(CONTRACT)


def _site(root: Path, embedder, parser, **kwargs) -> Components:  # type: ignore[no-untyped-def]
    return build_components(make_settings(root), embedder=embedder, parser=parser, **kwargs)


def _ingest(components: Components) -> str:
    upload = docs.Upload(filename="nda.txt", data=CONTRACT.encode(), tenant="default", collection="default")
    document_id = docs.submit(components, upload).document.id
    drain(components)
    return document_id


def _found(components: Components, text: str) -> list[str]:
    dense, sparse = components.embedder.embed_query(text), components.sparse.embed_query(text)
    return [c.record.document_id for c in components.index.search(dense, sparse, AccessFilter("default"), 3).chunks]


def test_a_site_refuses_another_embedder_until_rebuilt(  # type: ignore[no-untyped-def]
    onnx: OnnxEmbedder, embedder, parser, tmp_path: Path
) -> None:
    site = _site(tmp_path, embedder, parser)
    document_id = _ingest(site)
    site.close()
    assert recorded_embedder(site.engine) == {"model": MODEL_NAME, "dim": 384}

    with pytest.raises(EmbedderMismatch, match="enclave index rebuild"):
        _site(tmp_path, onnx, parser)

    rebuilding = _site(tmp_path, onnx, parser, embedder_check=False)
    try:
        report = rebuild_index(rebuilding)
        assert (report.documents, report.failed, report.recorded) == (1, {}, True) and report.chunks >= 1
    finally:
        rebuilding.close()
    moved = _site(tmp_path, onnx, parser)
    try:
        assert recorded_embedder(moved.engine) == {"model": onnx.model_name, "dim": 384}
        assert _found(moved, "which state's law governs the agreement") == [document_id]
    finally:
        moved.close()
    with pytest.raises(EmbedderMismatch, match=re.escape(f"made by {onnx.model_name}")):
        _site(tmp_path, embedder, parser)  # and now the PyTorch embedder is the stranger


def test_an_index_from_before_the_record_counts_as_pytorch(  # type: ignore[no-untyped-def]
    onnx: OnnxEmbedder, embedder, parser, tmp_path: Path
) -> None:
    site = _site(tmp_path, embedder, parser)
    _ingest(site)
    with session_scope(site.engine) as session:  # as a site written by an earlier build
        session.execute(delete(SiteSetting))
    site.close()
    with pytest.raises(EmbedderMismatch):
        _site(tmp_path, onnx, parser)
    _site(tmp_path, embedder, parser).close()


def test_an_empty_site_records_the_embedder_it_starts_with(onnx: OnnxEmbedder, parser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site = _site(tmp_path, onnx, parser)
    site.close()
    assert recorded_embedder(site.engine) == {"model": onnx.model_name, "dim": 384}

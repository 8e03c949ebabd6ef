"""Queries on ONNX Runtime, passages on PyTorch (the default): the same vectors both ways, the PyTorch
identity recorded, and queries kept on PyTorch whenever the ONNX side cannot start or disagrees.

Real components: the packaged MiniLM exported with torch.onnx, real CUAD and SciFact questions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.common import real_queries
from ingest.config import Settings
from ingest.embedding.onnx_embedder import OnnxEmbedder, OnnxQueries
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder
from ingest.runtime import build_components, make_embedder
from tests.conftest import make_settings


class Disagrees:
    """An ONNX side whose vectors are not the PyTorch ones (another model exported by mistake)."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner = inner

    def warm_up(self) -> None:
        self.inner.warm_up()

    def embed_query(self, text: str) -> list[float]:
        vector = np.array(self.inner.embed_query(text))
        vector[: len(vector) // 8] *= -1  # still unit length, cosine 0.75 to the right vector
        return list(map(float, vector))


class WillNotStart:
    def warm_up(self) -> None:
        raise RuntimeError("onnxruntime: no CPU execution provider")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("onnx-queries") / "data")


def test_the_default_embeds_queries_on_onnx_with_the_pytorch_vectors(
    site: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    default = make_embedder(site)
    assert isinstance(default, OnnxQueries)
    default.warm_up()
    assert not list((site.data_dir / "models").glob("**/*.onnx"))  # ingestion alone never exports
    questions = real_queries(n=120)
    ours = np.array([default.embed_query(q) for q in questions])
    assert default.warm_up_queries()  # the ONNX side started and matched
    assert len(list((site.data_dir / "models" / "onnx").glob("*-fp32.onnx"))) == 1
    exact = np.array([embedder.embed_query(q) for q in questions])
    cosine = (ours * exact).sum(axis=1)
    assert float(cosine.min()) >= 0.9999, np.percentile(cosine, [0, 1, 50])
    assert not np.array_equal(ours, exact)  # computed by the other runtime, not handed through
    # the site records the PyTorch embedder: an index built before this change is queried as it was
    assert (default.model_name, default.dim, default.max_tokens) == (embedder.model_name, embedder.dim, 256)
    assert default.precision == default.passages.precision  # the stored vectors' precision (eval index key)
    texts = questions[:4]
    assert np.array_equal(np.array(default.embed_passages(texts)), np.array(default.passages.embed_passages(texts)))


@pytest.mark.parametrize("broken", ["disagrees", "will not start"])
def test_queries_stay_on_pytorch_when_the_onnx_side_disagrees_or_fails(
    site: Settings, embedder: SentenceTransformerEmbedder, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    onnx = OnnxEmbedder(site.data_dir / "models" / "onnx", precision="fp32", batch_size=1)
    side = Disagrees(onnx) if broken == "disagrees" else WillNotStart()
    guarded = OnnxQueries(embedder, side)  # type: ignore[arg-type]
    question = real_queries(n=1)[0]
    assert guarded.embed_query(question) == embedder.embed_query(question)
    assert guarded.warm_up_queries() is False
    assert ("onnx_queries_differ" if broken == "disagrees" else "onnx_queries_unavailable") in caplog.text


def test_query_backend_torch_keeps_one_runtime(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", embedder={"query_backend": "torch"})
    assert isinstance(make_embedder(settings), SentenceTransformerEmbedder)


def test_a_site_built_with_pytorch_queries_serves_onnx_queries(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """The identity check passes both ways: the two query paths are one embedder to the site."""
    settings = make_settings(tmp_path / "data")
    build_components(settings, embedder=embedder).close()  # the site records the PyTorch embedder
    components = build_components(settings)  # the default: ONNX queries
    try:
        assert isinstance(components.embedder, OnnxQueries)
        assert components.embedder.warm_up_queries()
    finally:
        components.close()

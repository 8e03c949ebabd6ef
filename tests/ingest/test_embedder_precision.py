"""bf16 autocast of the PyTorch embedder: the same vectors as fp32, to within a cosine of 0.9999.

That is why a site may switch between the two (``ENCLAVE_EMBEDDER__PRECISION``) without a rebuild:
they share the embedder identity the index records. Real text (CUAD, SciFact), the packaged model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.config import EmbedderSettings, Settings
from ingest.embedding.onnx_embedder import OnnxQueries
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder, cpu_has_native_bf16
from ingest.runtime import make_embedder
from tests.ingest.real_text import real_texts


def _texts() -> list[str]:
    return real_texts(slice(20, 30), 160, 40)


@pytest.fixture(scope="module")
def fp32_and_bf16() -> tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder]:
    fp32, bf16 = SentenceTransformerEmbedder(precision="fp32"), SentenceTransformerEmbedder(precision="bf16")
    fp32.warm_up()
    bf16.warm_up()
    return fp32, bf16


def test_bf16_vectors_equal_fp32_vectors_to_four_nines(
    fp32_and_bf16: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
) -> None:
    fp32, bf16 = fp32_and_bf16
    texts = _texts()
    ours, theirs = np.array(bf16.embed_passages(texts)), np.array(fp32.embed_passages(texts))
    cosine = (ours * theirs).sum(axis=1)
    assert float(cosine.min()) >= 0.9999, np.percentile(cosine, [0, 1, 50])
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    assert bf16.model_name == fp32.model_name  # one identity: the index may hold both
    assert np.dot(bf16.embed_query(texts[0]), fp32.embed_query(texts[0])) >= 0.9999


def test_auto_picks_bf16_only_where_the_cpu_has_bf16_units() -> None:
    assert SentenceTransformerEmbedder().precision == ("bf16" if cpu_has_native_bf16() else "fp32")
    assert SentenceTransformerEmbedder(precision="fp32").precision == "fp32"


def test_the_forward_batch_changes_no_vector(
    fp32_and_bf16: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
) -> None:
    """``ENCLAVE_EMBEDDER__FORWARD_BATCH`` only changes how much padding each forward pass carries: a text's
    vector is the same (to the same four nines) whether its batch of mixed lengths ran as one pass or in runs."""
    texts = _texts()
    assert len({len(t) for t in texts}) > 16  # mixed lengths: runs of 4 pad much less than one pass of all
    settings = Settings(data_dir=Path("unused"), embedder=EmbedderSettings(forward_batch=4))
    default = make_embedder(settings)
    assert isinstance(default, OnnxQueries)  # passages on PyTorch, queries on ONNX Runtime
    runs = default.passages
    for whole in fp32_and_bf16:
        runs.precision = whole.precision
        one_pass = SentenceTransformerEmbedder(precision=whole.precision, batch_size=len(texts))
        ours, theirs = np.array(runs.embed_passages(texts)), np.array(one_pass.embed_passages(texts))
        cosine = (ours * theirs).sum(axis=1)
        assert float(cosine.min()) >= 0.9999, (whole.precision, np.percentile(cosine, [0, 1, 50]))

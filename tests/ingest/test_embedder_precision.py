"""bf16 passages of the PyTorch embedder: the same vectors as fp32, to within a cosine of 0.9999.

That is why a site may switch between the two (``ENCLAVE_EMBEDDER__PRECISION``) without a rebuild:
they share the embedder identity the index records. Real text (CUAD, SciFact), the packaged model.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from ingest.config import EmbedderSettings, Settings
from ingest.embedding.mean_pooling import MeanPoolingEncoder
from ingest.embedding.onednn import FusedBertForward, PackedLinear, fusable, pack_linears, packable
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


def test_bf16_passages_run_on_prepacked_linear_layers_where_torch_has_them(
    fp32_and_bf16: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
) -> None:
    """The bf16 copy's linear layers run on oneDNN's prepacked weights (1.1x) and still give fp32's vectors."""
    _, bf16 = fp32_and_bf16
    model = bf16.passage_encoder().model  # type: ignore[attr-defined]
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, PackedLinear))]
    assert layers and all(isinstance(m, PackedLinear) for m in layers) == packable()
    assert bf16.encoder.model.dtype == torch.float32  # type: ignore[attr-defined] # queries stay on fp32 weights


def test_packed_layers_that_change_the_vectors_are_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A packed copy whose vectors of the probe texts stray from fp32's (a torch build whose oneDNN kernels
    misbehave), or that fails to build, is dropped for the plain bf16 copy, with a warning."""

    def skewed(self: MeanPoolingEncoder) -> MeanPoolingEncoder:
        copy = self.in_bf16()
        with torch.no_grad():
            copy.model.embeddings.word_embeddings.weight.mul_(-1.0)  # type: ignore[union-attr, operator]
        return copy

    def broken(self: MeanPoolingEncoder) -> MeanPoolingEncoder:
        raise RuntimeError("oneDNN: could not create a primitive")

    texts = _texts()[:6]
    reference = np.array(SentenceTransformerEmbedder(precision="fp32").embed_passages(texts))
    for fault, event in ((skewed, "embedder.packed_bf16_differs"), (broken, "embedder.packed_bf16_unavailable")):
        monkeypatch.setattr(MeanPoolingEncoder, "packed_bf16", fault)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="ingest.embedding.sentence_transformers_embedder"):
            bf16 = SentenceTransformerEmbedder(precision="bf16")
            vectors = np.array(bf16.embed_passages(texts))
        assert event in caplog.text
        assert float((vectors * reference).sum(axis=1).min()) >= 0.9999
        assert not any(isinstance(m, PackedLinear) for m in bf16.passage_encoder().model.modules())  # type: ignore[attr-defined]


def _tiny_bert(**overrides: object) -> torch.nn.Module:
    from transformers import BertConfig, BertModel

    torch.manual_seed(3)
    config = BertConfig(
        vocab_size=64,
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=96,
        initializer_range=0.5,  # weights large enough that attention and the feed-forward move every token
        **overrides,
    )
    return BertModel(config).eval().to(torch.bfloat16)


@pytest.mark.skipif(not packable(), reason="this torch build has no prepacked oneDNN linear layers")
def test_the_fused_forward_pass_gives_the_models_own_hidden_states() -> None:
    """:class:`FusedBertForward` (GELU and residual sums inside the products, one mask row per text) computes what
    ``BertModel`` does: every real token's last hidden state, padded texts of several lengths in one batch,
    to bf16 rounding; padding never leaks into a text."""
    model = _tiny_bert()
    pack_linears(model, rows=64)
    assert fusable(model)
    lengths = torch.tensor([9, 4, 7, 1])
    mask = (torch.arange(9)[None, :] < lengths[:, None]).long()
    ids = torch.randint(1, 64, (4, 9)) * mask
    types = torch.zeros_like(ids)
    with torch.inference_mode():
        theirs = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state.float()
        ours = FusedBertForward(model)(ids, mask, types).float()
        shorter = FusedBertForward(model)(ids[1:2, :4], mask[1:2, :4], types[1:2, :4]).float()  # the text unpadded
    real = mask.bool()
    cosine = torch.nn.functional.cosine_similarity(ours[real], theirs[real], dim=-1)
    # bf16 rounding at weights this large leaves >= 0.998; without the mask, the GELU or a residual sum: <= 0.90
    assert float(cosine.min()) >= 0.99, cosine
    assert float(torch.nn.functional.cosine_similarity(ours[1, :4], shorter[0], dim=-1).min()) >= 0.99


@pytest.mark.skipif(not packable(), reason="this torch build has no prepacked oneDNN linear layers")
def test_only_the_berts_the_fused_pass_computes_are_fused() -> None:
    """Another activation, relative positions, a decoder or layers left unpacked keep the model's own pass."""
    for overrides in ({"hidden_act": "gelu_new"}, {"position_embedding_type": "relative_key"}, {"is_decoder": True}):
        model = _tiny_bert(**overrides)
        pack_linears(model, rows=64)
        assert not fusable(model), overrides
    assert not fusable(_tiny_bert())  # not packed


@pytest.mark.skipif(not packable(), reason="this torch build has no prepacked oneDNN linear layers")
def test_bf16_passages_run_on_the_fused_pass_with_the_models_own_vectors(
    fp32_and_bf16: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
) -> None:
    """The packaged MiniLM's passages run on the fused pass, and its vectors of real chunks of mixed lengths
    (padded together) are the model's own pass's on the same packed layers."""
    _, bf16 = fp32_and_bf16
    fused = bf16.passage_encoder()
    assert isinstance(fused, MeanPoolingEncoder) and isinstance(fused.fused, FusedBertForward)
    own = copy.copy(fused)
    own.fused = None
    texts = _texts()
    ours, theirs = fused.encode(texts, 16), own.encode(texts, 16)
    assert float((ours * theirs).sum(axis=1).min()) >= 0.9999

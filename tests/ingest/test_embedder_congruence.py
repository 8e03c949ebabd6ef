"""The PyTorch embedder runs MiniLM on ``transformers`` alone: its vectors must be sentence-transformers' own.

What a user would notice if it broke: an index built before this change (by sentence-transformers)
queried with vectors that are slightly off, or a model directory of another kind (CLS pooling,
say) embedded with the wrong pooling. The embedder identity an index records assumes the former
never happens, so equality is checked to 1e-6, in fp32 and under bf16 autocast, on real text with
the awkward cases (surrounding whitespace, a text past 256 tokens, one batch of mixed lengths). In bf16
the passages run on a copy of the model with bf16 weights (faster than autocast): a cosine of 0.9999.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ingest.embedding.mean_pooling import MeanPoolingEncoder, is_mean_pooled
from ingest.embedding.sentence_transformers_embedder import (
    SentenceTransformerEmbedder,
    load_sentence_transformer,
    packaged_model_path,
    torch_autocast,
)
from tests.ingest.real_text import real_texts


def _texts() -> list[str]:
    awkward = ["  a clause with spaces around it  ", "\n\nGoverning law.\n", "term " * 400, "Fee: $10 ✓ é"]
    return real_texts(slice(40, 42), 120, 8) + awkward


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_vectors_are_sentence_transformers_vectors(precision: str) -> None:
    ours = SentenceTransformerEmbedder(precision="fp32" if precision == "fp32" else "bf16", batch_size=8)
    reference = load_sentence_transformer(packaged_model_path())
    texts = _texts()
    with torch_autocast(precision == "bf16"):
        theirs = reference.encode(texts, batch_size=8, normalize_embeddings=True, convert_to_numpy=True)
        same_steps = ours.encoder.encode(texts, 8)  # the fp32 model, under autocast for bf16
    assert float(np.abs(same_steps - theirs).max()) <= 1e-6
    passages = np.array(ours.embed_passages(texts))
    if precision == "fp32":
        assert float(np.abs(passages - theirs).max()) <= 1e-6
    else:  # the passages run on a copy with bf16 weights (no autocast): the same vectors to four nines
        assert isinstance(ours.passage_encoder(), MeanPoolingEncoder)
        assert ours.passage_encoder().model.dtype == torch.bfloat16
        cosine = (passages * theirs).sum(axis=1)
        assert float(cosine.min()) >= 0.9999, np.percentile(cosine, [0, 1, 50])
        assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert (ours.dim, ours.max_tokens) == (384, 256)
    assert ours.tokenizer("one two")["input_ids"] == reference.tokenizer("one two")["input_ids"]
    query = reference.encode(["  notice period?  "], normalize_embeddings=True, convert_to_numpy=True)[0]
    assert float(np.abs(np.array(ours.embed_query("  notice period?  ")) - query).max()) <= 1e-6


def test_only_a_mean_pooled_model_skips_sentence_transformers(tmp_path: Path) -> None:
    packaged = packaged_model_path()
    assert is_mean_pooled(packaged)
    cls = tmp_path / "cls"
    shutil.copytree(packaged, cls, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    pooling = cls / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps(config | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    assert not is_mean_pooled(cls)
    lower = tmp_path / "lower"
    shutil.copytree(packaged, lower, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    (lower / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": True}))
    assert not is_mean_pooled(lower)
    assert not is_mean_pooled(tmp_path)  # no modules.json: not a sentence-transformers directory we know

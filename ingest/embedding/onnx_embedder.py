"""Dense embedder on ONNX Runtime: the packaged MiniLM, exported once to ONNX and optionally quantised to int8.

The graph is exported from the very weights sentence-transformers loads (BERT, then mean pooling
over the attention mask and L2 normalisation, inside the graph), with ``torch.onnx`` on first use;
``int8`` then quantises the MatMul weights per output channel (``onnxruntime.quantization``, dynamic:
activations are quantised at run time), except the feed-forward down-projections (:func:`kept_in_fp32`).
The result is cached under ``cache_dir`` as
``<sha256 of the weights, 16 hex>-<precision>.onnx``: a changed model file gets a new export, and an
export interrupted half-way never leaves a file under the final name. Nothing is downloaded.

Texts are tokenised with the model's own fast tokenizer (truncation at the model's 256 tokens, as
sentence-transformers does) and batched by length, so little padding is computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ingest.embedding.sentence_transformers_embedder import (
    MIN_PROBE_COSINE,
    MODEL_NAME,
    PROBES,
    SentenceTransformerEmbedder,
    packaged_model_path,
)

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def weights_digest(model_path: Path) -> str:
    """SHA-256 (16 hex) of the model's weights file: the cache key of its exports."""
    for name in WEIGHT_FILES:
        path = model_path / name
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()[:16]
    raise FileNotFoundError(f"no weights ({' or '.join(WEIGHT_FILES)}) in {model_path}")


class OnnxEmbedder:
    """:class:`~ingest.embedding.port.DenseEmbedder` on ONNX Runtime (CPU)."""

    def __init__(
        self,
        cache_dir: Path,
        model_path: Path | None = None,
        precision: Precision = "int8",
        batch_size: int = 64,
        threads: int | None = None,
        spinning: bool = True,
    ) -> None:
        """``spinning``: whether ONNX Runtime's threads spin between runs (good for batches back to back; for
        one query now and then they burn CPU for nothing: 19.7 against 14.5 ms per query, bench/query_embedders.py)."""
        self.model_name = f"{MODEL_NAME}+onnx-{precision}"
        self.dim = 384
        self.max_tokens = 256
        self._cache_dir = cache_dir
        self._path = model_path
        self._precision = precision
        self._batch_size = batch_size
        self._threads = threads
        self._spinning = spinning
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort  # lazy: onnxruntime loads its native library
            from transformers import AutoTokenizer  # lazy: transformers is heavy to import

            path = self._path or packaged_model_path()
            self.max_tokens = _max_seq_length(path)
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), use_fast=True)
            graph = self.graph_path(path)
            if not graph.exists():
                export(path, graph, self._precision)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self._threads:
                options.intra_op_num_threads = self._threads
            if not self._spinning:
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            self.dim = int(self._session.get_outputs()[0].shape[-1])

    def graph_path(self, model_path: Path | None = None) -> Path:
        """Where this model's export of this precision is cached."""
        return (
            self._cache_dir
            / f"{weights_digest(model_path or self._path or packaged_model_path())}-{self._precision}.onnx"
        )

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self.warm_up()
        return self._tokenizer

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        if self._session is None:
            self.warm_up()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[Any] = [None] * len(texts)
        for start in range(0, len(order), self._batch_size):
            batch = order[start : start + self._batch_size]
            encoded = self._tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="np",
            )
            feed = {name: encoded[name].astype(np.int64) for name in INPUTS}
            for i, row in zip(batch, self._session.run(None, feed)[0], strict=True):
                vectors[i] = row
        return [list(map(float, row)) for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_passages([text])[0]


class OnnxQueries:
    """:class:`~ingest.embedding.port.DenseEmbedder` with two paths to the same vectors: passages on
    PyTorch (batched; bf16 where the CPU has AMX), queries on ONNX Runtime fp32 from an export of the same
    weights (``queries``).

    One short query is mostly per-operator overhead, which ONNX Runtime's fused graph avoids: 9.5 ms
    against PyTorch's 19.7 ms per real CUAD/SciFact question on this 2-core machine, cosine 1.000000 to
    the PyTorch vector for all 200 (``bench/query_embedders.py``). The vectors are the PyTorch embedder's,
    so the identity the site records is too (``model_name``). The ONNX side starts on the first query (the
    server warms it; ``enclave ingest`` never needs it) and serves only if its vectors of :data:`PROBES`
    match PyTorch's to :data:`MIN_PROBE_COSINE`; otherwise, or if it cannot start, queries stay on PyTorch
    and a warning says why.
    """

    def __init__(self, passages: SentenceTransformerEmbedder, queries: OnnxEmbedder) -> None:
        self.passages = passages
        self.queries = queries
        self.model_name = passages.model_name
        self.dim = passages.dim
        self.max_tokens = passages.max_tokens
        self._fast: bool | None = None  # None: the ONNX side has not been tried yet
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        self.passages.warm_up()
        self.dim, self.max_tokens = self.passages.dim, self.passages.max_tokens

    def warm_up_queries(self) -> bool:
        """Start the ONNX query path (once); whether queries run on it."""
        if self._fast is None:
            with self._lock:
                if self._fast is None:
                    self._fast = self._start_queries()
        return self._fast

    def _start_queries(self) -> bool:
        try:
            self.queries.warm_up()
            fast = np.array([self.queries.embed_query(text) for text in PROBES])
        except Exception as exc:  # noqa: BLE001 - any failure leaves queries on PyTorch, which works
            log.warning("embedder.onnx_queries_unavailable reason=%s", f"{type(exc).__name__}: {exc}"[:300])
            return False
        exact = np.array([self.passages.embed_query(text) for text in PROBES])
        worst = float((fast * exact).sum(axis=1).min())
        if worst < MIN_PROBE_COSINE:
            log.warning("embedder.onnx_queries_differ cosine=%.6f: queries stay on PyTorch", worst)
            return False
        return True

    @property
    def precision(self) -> str:
        """The passages' precision: what shaped the stored vectors (``enclave eval`` keys its indexes on it)."""
        return self.passages.precision

    @property
    def tokenizer(self) -> Any:
        return self.passages.tokenizer

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return self.passages.embed_passages(texts)

    def embed_query(self, text: str) -> list[float]:
        if self.warm_up_queries():
            return self.queries.embed_query(text)
        return self.passages.embed_query(text)


def _max_seq_length(model_path: Path) -> int:
    try:
        return int(json.loads((model_path / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


def export(model_path: Path, target: Path, precision: Precision) -> None:
    """Export the model (with pooling and normalisation) to ``target``; int8: quantise the export."""
    import torch  # lazy: only the first start with a new model exports
    from transformers import AutoModel, AutoTokenizer  # lazy: as above

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        bert = AutoModel.from_pretrained(str(model_path)).eval()
        sample = AutoTokenizer.from_pretrained(str(model_path))(["a b", "c"], padding=True, return_tensors="pt")
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated in favour of torch.export's, which needs onnxscript
            # (not installed); the graph it writes for this BERT is the one the tests check against PyTorch.
            warnings.filterwarnings(
                "ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning
            )
            torch.onnx.export(
                _pooled_module(bert),
                tuple(sample[name] for name in INPUTS),
                str(fp32),
                input_names=list(INPUTS),
                output_names=["embedding"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in INPUTS} | {"embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        result = fp32
        if precision == "int8":
            result = Path(tmp) / "int8.onnx"
            _quantise(fp32, result)
        os.replace(result, target)  # atomic: a reader sees the whole export or none


def _quantise(source: Path, target: Path) -> None:
    import onnx  # lazy: only an export needs it
    from onnxruntime.quantization import QuantType, quantize_dynamic  # lazy: as above

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=kept_in_fp32(onnx.load(str(source), load_external_data=False)),
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def kept_in_fp32(model: Any) -> list[str]:
    """The feed-forward down-projections (``layer.N/output/dense``): their GELU inputs have outliers that
    dynamic int8 quantisation clips. Keeping these 6 of 48 MatMuls in fp32 lifts the lowest cosine to the
    PyTorch vectors from 0.987 to 0.993 on CUAD and SciFact text (README "Performance")."""
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul" and "/output/dense/" in node.name and "/attention/" not in node.name
    ]


def _pooled_module(bert: Any) -> Any:
    import torch  # lazy: see export

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    return Pooled()

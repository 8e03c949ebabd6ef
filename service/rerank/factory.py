"""The one place a reranker is chosen from settings."""

from __future__ import annotations

from ingest.config import RerankSettings
from ingest.embedding.port import SparseEncoder
from service.rerank.mmr import MmrReranker
from service.rerank.port import Reranker
from service.rerank.vllm_reranker import VllmReranker


def make_reranker(cfg: RerankSettings, sparse: SparseEncoder) -> Reranker | None:
    """``none`` (the default: the fused ranking is used as is), ``mmr``, or ``vllm`` (needs ``base_url``)."""
    if cfg.kind == "mmr":
        return MmrReranker(sparse, cfg.mmr_lambda, cfg.candidates)
    if cfg.kind == "vllm":
        key = cfg.api_key.get_secret_value() if cfg.api_key else None
        return VllmReranker(str(cfg.base_url), cfg.model, key, cfg.timeout_s, cfg.candidates)
    return None

"""Reranker adapter for a served cross-encoder: vLLM's ``POST /rerank`` (Jina/Cohere-compatible).

Request ``{"model", "query", "documents": [text, ...], "top_n"}``; response ``{"results": [{"index",
"relevance_score"}, ...]}``. Transport and format failures become :class:`RerankerUnavailable`.
Texts are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx

from ingest.index.port import ScoredChunk
from service.rerank.port import RerankerUnavailable

log = logging.getLogger(__name__)


class VllmReranker:
    """:class:`~service.rerank.port.Reranker` over HTTP; ``base_url`` is the server root (``/rerank`` is added)."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        candidates: int = 30,
    ) -> None:
        self._url = base_url.rstrip("/") + "/rerank"
        self._model, self._candidates = model, candidates
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # trust_env=False: source text must never be routed through an HTTP(S)_PROXY from the environment.
        self._client = httpx.Client(headers=headers, timeout=timeout_s, trust_env=False)

    @property
    def candidates(self) -> int:
        return self._candidates

    def rerank(self, query: str, chunks: Sequence[ScoredChunk], k: int) -> list[ScoredChunk]:
        if not chunks:
            return []
        body: dict[str, Any] = {"query": query, "documents": [c.record.text for c in chunks], "top_n": k}
        if self._model:
            body["model"] = self._model
        ranked = _results(self._post(body), len(chunks))
        return [replace(chunks[i], score=round(score, 6)) for i, score in ranked[:k]]

    def _post(self, body: dict[str, Any]) -> Any:
        try:
            response = self._client.post(self._url, json=body)
        except httpx.HTTPError as exc:
            raise RerankerUnavailable(
                f"the reranker at {self._url} cannot be reached ({type(exc).__name__}); "
                "check ENCLAVE_RETRIEVAL__RERANK__BASE_URL or turn reranking off"
            ) from exc
        if response.status_code != 200:
            log.warning("reranker refused status=%s", response.status_code)
            raise RerankerUnavailable(
                f"the reranker at {self._url} answered HTTP {response.status_code}; "
                "check that it serves a reranking model (vllm serve --task score)"
            )
        return response.json()

    def close(self) -> None:
        self._client.close()


def _results(payload: Any, count: int) -> list[tuple[int, float]]:
    """(candidate index, score) best first; :raises RerankerUnavailable: on a malformed answer."""
    try:
        pairs = [(int(r["index"]), float(r["relevance_score"])) for r in payload["results"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise RerankerUnavailable(
            "the reranker's answer is not a /rerank response (results[].index, relevance_score)"
        ) from exc
    if any(not 0 <= i < count for i, _ in pairs) or len({i for i, _ in pairs}) != len(pairs):
        raise RerankerUnavailable("the reranker returned indexes that match no candidate")
    return sorted(pairs, key=lambda pair: pair[1], reverse=True)

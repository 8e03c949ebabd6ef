"""The optional reranking stage: MMR drops near-duplicate sources; a vLLM ``/rerank`` server reorders the
candidates the caller may see (and only those); a broken reranker is an error, never a silent no-op."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ingest import documents as docs
from ingest.config import RerankSettings
from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from ingest.index.port import AccessFilter, ScoredChunk
from ingest.runtime import Components, build_components
from ingest.worker import drain
from service.rerank.factory import make_reranker
from service.rerank.mmr import MmrReranker
from service.rerank.port import RerankerUnavailable
from service.rerank.vllm_reranker import VllmReranker
from service.retrieval import retrieve
from tests.chunks import scored_chunk
from tests.conftest import make_settings

CLAUSES = [
    "This Agreement is governed by the laws of the State of Delaware.",
    "This Agreement shall be governed by the laws of the State of Delaware.",
    "Any dispute is settled by arbitration in New York under the ICC rules.",
    "Either party may terminate on thirty days' written notice.",
]


def _chunk(n: int, text: str, score: float, groups: tuple[str, ...] = ()) -> ScoredChunk:
    return scored_chunk(text, n, score=score, dense_score=0.5, title=f"doc {n}", acl_groups=groups)


class FakeVllm(BaseHTTPRequestHandler):
    """vLLM's /rerank wire format (a process boundary we cannot run here): scores by a keyword."""

    seen: list[dict[str, Any]] = []
    broken = False

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeVllm.seen.append(body)
        docs = body["documents"]
        results = [
            {"index": i, "relevance_score": float("arbitration" in d), "document": {"text": d}}
            for i, d in enumerate(docs)
        ]
        payload = {"id": "rerank-1", "model": body.get("model"), "results": results, "usage": {"total_tokens": 1}}
        data = json.dumps({"oops": True} if FakeVllm.broken else payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def vllm() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeVllm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeVllm.seen, FakeVllm.broken = [], False
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_mmr_keeps_the_best_source_and_skips_its_near_duplicate() -> None:
    chunks = [
        _chunk(i, text, score) for i, (text, score) in enumerate(zip(CLAUSES, [0.9, 0.88, 0.6, 0.5], strict=True))
    ]
    diverse = MmrReranker(QdrantBm25Encoder(), lambda_=0.5).rerank("governing law", chunks, 2)
    assert [c.record.id for c in diverse] == [chunks[0].record.id, chunks[2].record.id]
    plain = MmrReranker(QdrantBm25Encoder(), lambda_=1.0).rerank("governing law", chunks, 2)
    assert [c.record.id for c in plain] == [chunks[0].record.id, chunks[1].record.id]


def test_the_vllm_reranker_reorders_by_the_servers_scores(vllm: str) -> None:
    chunks = [_chunk(i, text, 1.0 - i / 10) for i, text in enumerate(CLAUSES)]
    top = VllmReranker(vllm, model="bge-reranker").rerank("where are disputes settled?", chunks, 2)
    assert top[0].record.text == CLAUSES[2] and top[0].score == 1.0 and len(top) == 2
    assert top[0].dense_score == 0.5  # the not-found gate still sees the dense evidence
    assert FakeVllm.seen[0]["model"] == "bge-reranker" and FakeVllm.seen[0]["top_n"] == 2


def test_a_broken_or_missing_reranker_is_an_error_with_a_way_out(vllm: str) -> None:
    FakeVllm.broken = True
    with pytest.raises(RerankerUnavailable, match="not a /rerank response"):
        VllmReranker(vllm).rerank("q", [_chunk(1, "text", 1.0)], 1)
    with pytest.raises(RerankerUnavailable, match="RERANK__BASE_URL"):
        VllmReranker("http://127.0.0.1:9").rerank("q", [_chunk(1, "text", 1.0)], 1)
    with pytest.raises(ValueError, match="RERANK__BASE_URL"):
        RerankSettings(kind="vllm")
    assert make_reranker(RerankSettings(), QdrantBm25Encoder()) is None


@pytest.fixture
def stack(tmp_path: Path, embedder, parser) -> Iterator[Components]:  # type: ignore[no-untyped-def]
    components = build_components(make_settings(tmp_path / "data"), embedder=embedder, parser=parser)
    for i, text in enumerate(CLAUSES):
        acl = {"groups": ["secret"] if i == 2 else [], "users": []}
        docs.submit(
            components, docs.Upload(filename=f"clause-{i}.txt", data=text.encode(), tenant="t", collection="c", acl=acl)
        )
    assert drain(components) == len(CLAUSES)
    yield components
    components.close()


def test_retrieval_reranks_only_what_the_caller_may_see(stack: Components, vllm: str) -> None:
    reranker = make_reranker(RerankSettings(kind="vllm", base_url=vllm, candidates=10), stack.sparse)
    outsider = AccessFilter(tenant="t", principal_user="u", principal_groups=("staff",))
    found = retrieve(stack, "which law governs and where are disputes settled", outsider, 2, reranker=reranker)
    assert len(found.chunks) == 2 and all("arbitration" not in c.record.text for c in found.chunks)
    assert all("arbitration" not in d for d in FakeVllm.seen[-1]["documents"])  # never sent to the reranker
    insider = AccessFilter(tenant="t", principal_user="u", principal_groups=("secret",))
    top = retrieve(stack, "which law governs and where are disputes settled", insider, 1, reranker=reranker)
    assert top.chunks[0].record.text == CLAUSES[2] and len(FakeVllm.seen[-1]["documents"]) == 4

"""/v1/query (answer with citations, optionally streamed as SSE) and /v1/search (ranked chunks)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ingest.errors import EnclaveError
from service import answering
from service.auth import Principal
from service.context import AppState
from service.deps import PrincipalDep, StateDep
from service.generation.port import GenerationParams
from service.retrieval import Retrieved, citation, retrieve
from service.schemas import QueryRequest, QueryResponse, SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["query"])


def _params(state: AppState, principal: Principal) -> GenerationParams:
    cfg = state.settings.generator
    return GenerationParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature, timeout_s=cfg.timeout_s,
                            frequency_penalty=cfg.frequency_penalty, cache_salt=f"tenant:{principal.tenant}")


def _retrieve(state: AppState, principal: Principal, req: QueryRequest) -> Retrieved:
    k = req.k or state.settings.retrieval.k
    return retrieve(state.components, req.query, principal.access(req.collections), k, req.mode)


def _not_found(model: str | None) -> QueryResponse:
    return QueryResponse(answer=answering.NOT_FOUND, found=False, citations=[], model=model)


def answer(state: AppState, principal: Principal, req: QueryRequest) -> QueryResponse:
    """Retrieve, decide whether there is evidence, generate, and check the citations."""
    retrieved = _retrieve(state, principal, req)
    if not answering.has_evidence(retrieved, state.settings.retrieval.min_dense_score):
        return _not_found(None)
    messages = answering.build_messages(req.query, retrieved.chunks)
    text = state.generator.complete(messages, _params(state, principal)).strip()
    return _finish(state, text, retrieved)


def _finish(state: AppState, text: str, retrieved: Retrieved) -> QueryResponse:
    model = state.generator.model_name
    if not text or answering.is_refusal(text):
        return _not_found(model)
    cites, dropped = answering.citations_for(text, retrieved.chunks, state.settings.retrieval.snippet_chars)
    clean = answering.strip_invalid_markers(text, len(retrieved.chunks))
    return QueryResponse(answer=clean, found=True, citations=cites, model=model, dropped_citations=dropped)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def stream_answer(state: AppState, principal: Principal, req: QueryRequest) -> Iterator[str]:
    """Server-sent events: ``token`` deltas, then one ``answer`` event with citations, then ``done``."""
    try:
        retrieved = _retrieve(state, principal, req)
        if not answering.has_evidence(retrieved, state.settings.retrieval.min_dense_score):
            final = _not_found(None)
            yield _sse("token", {"text": final.answer})
        else:
            parts: list[str] = []
            messages = answering.build_messages(req.query, retrieved.chunks)
            for delta in state.generator.stream(messages, _params(state, principal)):
                parts.append(delta)
                yield _sse("token", {"text": delta})
            final = _finish(state, "".join(parts).strip(), retrieved)
        yield _sse("answer", final.model_dump())
    except EnclaveError as exc:
        yield _sse("error", {"error": {"message": exc.message, "type": "server_error", "param": exc.param, "code": exc.code}})
    yield _sse("done", {})


@router.post("/query", response_model=QueryResponse, responses={200: {"content": {"text/event-stream": {}}}})
def query(state: StateDep, principal: PrincipalDep, req: QueryRequest) -> QueryResponse | StreamingResponse:
    """Answer a question from the caller's documents, with citations; ``stream: true`` for SSE."""
    if req.stream:
        return StreamingResponse(stream_answer(state, principal, req), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    return answer(state, principal, req)


@router.post("/search", response_model=SearchResponse)
def search(state: StateDep, principal: PrincipalDep, req: SearchRequest) -> SearchResponse:
    """Ranked chunks only, no generation."""
    retrieved = retrieve(state.components, req.query, principal.access(req.collections), req.k, req.mode)
    snippet = state.settings.retrieval.snippet_chars
    return SearchResponse(results=[citation(c, i, snippet) for i, c in enumerate(retrieved.chunks, start=1)])

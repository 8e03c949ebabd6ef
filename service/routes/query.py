"""/v1/query (answer with citations, optionally streamed as SSE) and /v1/search (ranked chunks).

The router parses, authorises, calls :class:`~service.answering.answerer.Answerer` (held by the app
state) and wraps; the answering itself lives in ``service/answering``.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from service.answering.answerer import scope_detail
from service.auth import Principal, require
from service.compliance.context import AuditDep, RequestAudit
from service.deps import PrincipalDep, StateDep
from service.retrieval import citation, retrieve
from service.schemas import QueryRequest, QueryResponse, SearchRequest, SearchResponse
from service.snippets import Focus
from service.state import AppState

router = APIRouter(prefix="/v1", tags=["query"])


@router.post(
    "/query",
    response_model=QueryResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    dependencies=[require("reader", action="query")],
)
def query(
    state: StateDep, principal: PrincipalDep, req: QueryRequest, audit: AuditDep
) -> QueryResponse | StreamingResponse:
    """Answer a question from the caller's documents, with citations; ``stream: true`` for SSE."""
    if not req.stream:
        return state.answerer.audited(principal, req, audit)
    with audit.failures("query.answered", query=req.query, document_ids=req.document_ids or ()):
        found = state.answerer.retrieve(principal, req)
    # Fail closed before the first byte: if the trail cannot take this, the caller gets a 503.
    chunks = found.retrieved.chunks
    audit.record(
        "query.started",
        query=req.query,
        chunk_ids=[c.record.id for c in chunks],
        document_ids=[c.record.document_id for c in chunks],
        detail=scope_detail(req.document_ids),
    )
    return StreamingResponse(
        state.answerer.stream(principal, req, audit, found),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/search", response_model=SearchResponse, dependencies=[require("reader", action="query")])
async def search(state: StateDep, principal: PrincipalDep, req: SearchRequest, audit: AuditDep) -> SearchResponse:
    """Ranked chunks only, no generation."""
    # One thread-pool call for the blocking work; from a coroutine FastAPI checks the response model in the
    # event loop, where a sync route pays a second hop to the pool for it (bench/profile_query).
    return await run_in_threadpool(ranked_chunks, state, principal, req, audit)


def ranked_chunks(state: AppState, principal: Principal, req: SearchRequest, audit: RequestAudit) -> SearchResponse:
    """The search itself, audited: blocks on the index, the embedder and the store."""
    with audit.failures("search.performed", query=req.query, document_ids=req.document_ids or ()):
        access = state.answerer.access(principal, req)
        names = state.answerer.document_names(access.tenant)
        embed_ask = state.settings.retrieval.focus_ask_embedding
        retrieved = retrieve(  # ranked chunks only: no evidence gate reads the best dense similarity
            state.components,
            req.query,
            access,
            req.k,
            req.mode,
            state.reranker,
            names=names,
            embed_ask=embed_ask,
            evidence=False,
        )
    chunks = retrieved.chunks
    audit.record(
        "search.performed",
        query=req.query,
        chunk_ids=[c.record.id for c in chunks],
        document_ids=[c.record.document_id for c in chunks],
        detail={"results": len(chunks)} | scope_detail(req.document_ids),
    )
    snippet, focus = state.settings.retrieval.snippet_chars, Focus(state.components.sparse, retrieved.query_terms)
    ranked = enumerate(retrieved.chunks, start=1)
    return SearchResponse(results=[citation(c, i, snippet, focus=focus) for i, c in ranked])

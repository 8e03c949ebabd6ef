"""/v1/query (answer with citations, optionally streamed as SSE) and /v1/search (ranked chunks)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ingest.audit.trail import AuditUnavailable
from ingest.errors import EnclaveError
from ingest.index.port import AccessFilter
from service import answering
from service.auth import Principal, require
from service.compliance.answers import answer_rule, redact_answer
from service.compliance.context import AuditDep, RequestAudit, actor_of
from service.context import AppState
from service.deps import PrincipalDep, StateDep
from service.filters import QueryFilters, narrow
from service.generation.cache_salt import tenant_cache_salt
from service.generation.port import GenerationParams
from service.retrieval import Retrieved, citation, retrieve
from service.schemas import QueryRequest, QueryResponse, SearchRequest, SearchResponse
from service.snippets import Focus

router = APIRouter(prefix="/v1", tags=["query"])


def _params(state: AppState, principal: Principal) -> GenerationParams:
    cfg = state.settings.generator
    salt = tenant_cache_salt(state.components.compliance.keyring, principal.tenant)
    return GenerationParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature, timeout_s=cfg.timeout_s,
                            frequency_penalty=cfg.frequency_penalty, cache_salt=salt)


def _access(state: AppState, principal: Principal, collections: list[str] | None,
            filters: QueryFilters | None) -> AccessFilter:
    """The caller's index filter, narrowed to the documents the request's metadata filters admit."""
    return narrow(principal.access(collections), filters, state.components.engine)


def _retrieve(state: AppState, principal: Principal, req: QueryRequest) -> Retrieved:
    k = req.k or state.settings.retrieval.k
    access = _access(state, principal, req.collections, req.filters)
    return retrieve(state.components, req.query, access, k, req.mode, state.reranker)


def _focus(state: AppState, retrieved: Retrieved) -> Focus:
    return Focus(state.components.sparse, retrieved.query_terms)


def _not_found(model: str | None) -> QueryResponse:
    return QueryResponse(answer=answering.NOT_FOUND, found=False, citations=[], model=model)


def answer(state: AppState, principal: Principal, req: QueryRequest) -> QueryResponse:
    """Retrieve, decide whether there is evidence, generate, and check the citations."""
    return answer_with_sources(state, principal, req)[0]


def answer_with_sources(state: AppState, principal: Principal, req: QueryRequest) -> tuple[QueryResponse, Retrieved]:
    """:func:`answer` plus the sources it drew on (the audit records which of them were shown)."""
    retrieved = _retrieve(state, principal, req)
    if not answering.has_evidence(retrieved, state.settings.retrieval.min_dense_score):
        return _not_found(None), retrieved
    messages = answering.build_messages(req.query, retrieved.chunks)
    text = state.generator.complete(messages, _params(state, principal)).strip()
    response = _finish(state, text, retrieved)
    return redact_answer(state, principal.tenant, response, answer_rule(state, retrieved.chunks))[0], retrieved


def audited_answer(state: AppState, principal: Principal, req: QueryRequest, audit: RequestAudit | None = None) -> QueryResponse:
    """:func:`answer`, audited as ``query.answered`` before it is returned (or its failure is)."""
    audit = audit or RequestAudit(state, actor_of(principal))
    with audit.failures("query.answered", query=req.query):
        response, retrieved = answer_with_sources(state, principal, req)
    record_answer(audit, req.query, response, retrieved)
    return response


def record_answer(audit: RequestAudit, query: str, response: QueryResponse, retrieved: Retrieved) -> None:
    """Audit ``query.answered``: the chunks shown are the cited sources of a found answer, none otherwise."""
    shown = retrieved.chunks if response.found else []
    audit.record("query.answered", "answered" if response.found else "not_found", query=query, model=response.model,
                 chunk_ids=[c.record.id for c in shown], document_ids=[c.record.document_id for c in shown],
                 detail={"sources": len(shown), "dropped_citations": response.dropped_citations})


def _finish(state: AppState, text: str, retrieved: Retrieved) -> QueryResponse:
    model = state.generator.model_name
    if not text or answering.is_refusal(text):
        return _not_found(model)
    cites, dropped = answering.citations_for(text, retrieved.chunks, state.settings.retrieval.snippet_chars,
                                             _focus(state, retrieved))
    clean = answering.strip_invalid_markers(text, len(retrieved.chunks))
    return QueryResponse(answer=clean, found=True, citations=cites, model=model, dropped_citations=dropped)


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def stream_answer(state: AppState, principal: Principal, req: QueryRequest, audit: RequestAudit | None = None,
                  retrieved: Retrieved | None = None) -> Iterator[str]:
    """Server-sent events: ``token`` deltas, then one ``answer`` event with citations, then ``done``.

    When the sources' redaction rule needs the answer scanned, the tokens are held back and the
    redacted answer is sent as one ``token`` event. With ``audit``, ``query.answered`` is recorded
    before the ``answer`` event (or the failure is, before the ``error`` event).
    """
    try:
        retrieved = retrieved or _retrieve(state, principal, req)
        rule = answer_rule(state, retrieved.chunks)
        if not answering.has_evidence(retrieved, state.settings.retrieval.min_dense_score):
            final = _not_found(None)
            yield _sse("token", {"text": final.answer})
        else:
            parts: list[str] = []
            messages = answering.build_messages(req.query, retrieved.chunks)
            for delta in state.generator.stream(messages, _params(state, principal)):
                parts.append(delta)
                if not rule.needs_detection:
                    yield _sse("token", {"text": delta})
            final = redact_answer(state, principal.tenant, _finish(state, "".join(parts).strip(), retrieved), rule)[0]
            if rule.needs_detection:
                yield _sse("token", {"text": final.answer})
        if audit is not None:
            record_answer(audit, req.query, final, retrieved)
        yield _sse("answer", final.model_dump())
    except EnclaveError as exc:
        yield _sse("error", {"error": {"message": exc.message, "type": "server_error", "param": exc.param,
                                       "code": _audit_failure(audit, req.query, exc)}})
    yield _sse("done", {})


def _audit_failure(audit: RequestAudit | None, query: str, exc: EnclaveError) -> str:
    """Record a stream that died (generator gone, timeout); returns the code the client should see."""
    if audit is None or isinstance(exc, AuditUnavailable):
        return exc.code
    try:
        audit.record("query.answered", f"error:{exc.code}", query=query)
    except AuditUnavailable as failed:
        return failed.code
    return exc.code


@router.post("/query", response_model=QueryResponse, responses={200: {"content": {"text/event-stream": {}}}},
             dependencies=[require("reader", action="query")])
def query(state: StateDep, principal: PrincipalDep, req: QueryRequest, audit: AuditDep) -> QueryResponse | StreamingResponse:
    """Answer a question from the caller's documents, with citations; ``stream: true`` for SSE."""
    if req.stream:
        with audit.failures("query.answered", query=req.query):
            retrieved = _retrieve(state, principal, req)
        # Fail closed before the first byte: if the trail cannot take this, the caller gets a 503.
        audit.record("query.started", query=req.query, chunk_ids=[c.record.id for c in retrieved.chunks],
                     document_ids=[c.record.document_id for c in retrieved.chunks])
        return StreamingResponse(stream_answer(state, principal, req, audit, retrieved), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    return audited_answer(state, principal, req, audit)


@router.post("/search", response_model=SearchResponse, dependencies=[require("reader", action="query")])
def search(state: StateDep, principal: PrincipalDep, req: SearchRequest, audit: AuditDep) -> SearchResponse:
    """Ranked chunks only, no generation."""
    with audit.failures("search.performed", query=req.query):
        access = _access(state, principal, req.collections, req.filters)
        retrieved = retrieve(state.components, req.query, access, req.k, req.mode, state.reranker)
    audit.record("search.performed", query=req.query, chunk_ids=[c.record.id for c in retrieved.chunks],
                 document_ids=[c.record.document_id for c in retrieved.chunks], detail={"results": len(retrieved.chunks)})
    snippet, focus = state.settings.retrieval.snippet_chars, _focus(state, retrieved)
    ranked = enumerate(retrieved.chunks, start=1)
    return SearchResponse(results=[citation(c, i, snippet, focus=focus) for i, c in ranked])

"""Chat completions over the very path ``/v1/query`` takes: same retrieval filter, redaction and audit.

The conversation's user and assistant turns become one standalone question (see ``followup``), the
model name picks the collections, and the answer comes back as an OpenAI ``chat.completion`` (or a
stream of ``chat.completion.chunk`` events ending in ``data: [DONE]``). The content carries the
``[n]`` markers plus a short "Sources:" list, so a chat widget that shows only text still shows
where the answer came from; ``citations`` carries the full citation objects.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from service.answering.answerer import require_visible, scope_detail
from service.auth import Principal
from service.chat.followup import Standalone, Turn, standalone_question
from service.chat.models import collections_for
from service.chat.schemas import (
    AssistantMessageOut,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    UserMessage,
    message_text,
)
from service.compliance.context import RequestAudit
from service.generation.cache_salt import tenant_cache_salt
from service.generation.port import GenerationParams
from service.schemas import QueryRequest, QueryResponse
from service.state import AppState

REWRITE_MAX_TOKENS = 48
ACTION = "query.answered"


def conversation(req: ChatCompletionRequest) -> list[Turn]:
    """User and assistant turns up to and including the last user message (the question)."""
    turns = [Turn(m.role, message_text(m.content)) for m in req.messages if m.role in ("user", "assistant")]
    last_user = max(i for i, m in enumerate(req.messages) if isinstance(m, UserMessage))
    kept = sum(1 for m in req.messages[: last_user + 1] if m.role in ("user", "assistant"))
    return turns[:kept]


def _rewrite_params(state: AppState, principal: Principal) -> GenerationParams:
    salt = tenant_cache_salt(state.components.compliance.keyring, principal.tenant)
    return GenerationParams(
        max_tokens=REWRITE_MAX_TOKENS, temperature=0.0, timeout_s=state.settings.generator.timeout_s, cache_salt=salt
    )


def prepare(state: AppState, principal: Principal, req: ChatCompletionRequest) -> tuple[QueryRequest, Standalone]:
    """The query ``/v1/query`` would get for this chat: standalone question, the model's collections.

    :raises ModelNotFound: the model name is not ``enclave`` or a collection the caller can see.
    :raises NotFound: ``document_ids`` names a document the caller may not see (as ``/v1/query`` answers).
    """
    collections = collections_for(req.model, state.components, principal)
    if req.document_ids is not None:  # before the rewrite: a scope that answers 404 costs no generation
        require_visible(state.components, principal, req.document_ids)
    standalone = standalone_question(conversation(req), state.generator, _rewrite_params(state, principal))
    query = QueryRequest(query=standalone.question, collections=collections, document_ids=req.document_ids)
    return query, standalone


def _last_question(req: ChatCompletionRequest) -> str:
    return conversation(req)[-1].text


def complete(state: AppState, principal: Principal, req: ChatCompletionRequest, audit: RequestAudit) -> ChatCompletion:
    """A non-streamed chat completion, audited as ``query.answered`` exactly like ``/v1/query``."""
    with audit.failures(ACTION, query=_last_question(req), document_ids=req.document_ids or ()):
        query, standalone = prepare(state, principal, req)
    response = state.answerer.audited(principal, query, audit)
    message = AssistantMessageOut(content=response.answer + sources_footer(response))
    return ChatCompletion(
        id=completion_id(),
        created=int(time.time()),
        model=req.model,
        choices=[Choice(message=message)],
        citations=response.citations,
        found=response.found,
        standalone_question=standalone.question,
    )


def start_stream(
    state: AppState, principal: Principal, req: ChatCompletionRequest, audit: RequestAudit
) -> Iterator[str]:
    """Everything that can fail cleanly happens here, before the first byte; then the chunk stream.

    As ``/v1/query`` does, ``query.started`` is recorded before streaming (fail closed), and the
    stream itself records ``query.answered``.
    """
    with audit.failures(ACTION, query=_last_question(req), document_ids=req.document_ids or ()):
        query, standalone = prepare(state, principal, req)
        found = state.answerer.retrieve(principal, query)
    chunks = found.retrieved.chunks
    audit.record(
        "query.started",
        query=query.query,
        chunk_ids=[c.record.id for c in chunks],
        document_ids=[c.record.document_id for c in chunks],
        detail=scope_detail(query.document_ids),
    )
    return stream_chunks(req.model, standalone, state.answerer.stream(principal, query, audit, found))


def sources_footer(response: QueryResponse) -> str:
    """``Sources:`` with the cited sources (all supplied ones if the answer cited none); empty when not found."""
    if not response.found or not response.citations:
        return ""
    shown = [c for c in response.citations if c.cited] or response.citations
    lines = [f"[{c.marker}] {c.title}" + (f", p. {c.page}" if c.page else "") for c in shown]
    return "\n\nSources:\n" + "\n".join(lines)


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def stream_chunks(model: str, standalone: Standalone, events: Iterator[str]) -> Iterator[str]:
    """``/v1/query``'s SSE events re-shaped as OpenAI ``chat.completion.chunk`` events, then ``[DONE]``."""
    ident, created = completion_id(), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for kind, data in parse_events(events):
        if kind == "token":
            yield chunk({"content": data["text"]})
        elif kind == "answer":
            final = QueryResponse.model_validate(data)
            footer = sources_footer(final)
            if footer:
                yield chunk({"content": footer})
            yield chunk(
                {},
                "stop",
                citations=[c.model_dump() for c in final.citations],
                found=final.found,
                standalone_question=standalone.question,
            )
        elif kind == "error":
            yield f"data: {json.dumps({'error': data['error']})}\n\n"
    yield "data: [DONE]\n\n"


def parse_events(events: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) from server-sent event blocks as ``/v1/query`` writes them (one block per item)."""
    for block in events:
        kind, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data += line.removeprefix("data: ")
        if data:
            yield kind, json.loads(data)

"""OpenAI-compatible ``/v1/chat/completions`` and ``/v1/models``: point a portal's OpenAI client at Enclave."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from service.auth import require
from service.chat import completions
from service.chat.models import model_names
from service.chat.schemas import ChatCompletion, ChatCompletionRequest, ModelCard, ModelList
from service.compliance.context import AuditDep
from service.deps import PrincipalDep, StateDep
from service.listing import NOT_MODIFIED, conditional_json

router = APIRouter(prefix="/v1", tags=["openai"])
STARTED = int(time.time())
STREAM_DOC = {
    "text/event-stream": {
        "schema": {"type": "string", "description": "`data: {chat.completion.chunk}` events, then `data: [DONE]`"}
    }
}


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: {"content": STREAM_DOC}},
    dependencies=[require("reader", action="query")],
)
def chat_completions(
    state: StateDep, principal: PrincipalDep, req: ChatCompletionRequest, audit: AuditDep
) -> ChatCompletion | StreamingResponse:
    """Answer the last user message from the caller's documents (earlier turns give follow-ups their subject).

    ``model`` picks the collections: ``enclave`` searches all the caller may see, ``enclave:<collection>``
    one; ``document_ids`` scopes the question to those documents, as on ``/v1/query``. The answer cites
    sources with ``[n]`` markers; ``citations`` holds them in full (also on the final chunk of a stream).
    """
    if req.stream:
        return StreamingResponse(
            completions.start_stream(state, principal, req, audit),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    return completions.complete(state, principal, req, audit)


@router.get(
    "/models", response_model=ModelList, responses=NOT_MODIFIED, dependencies=[require("reader", action="query")]
)
def list_models(request: Request, state: StateDep, principal: PrincipalDep) -> Response:
    """``enclave`` plus ``enclave:<collection>`` for each collection the caller can see."""
    cards = [ModelCard(id=name, created=STARTED) for name in model_names(state.components, principal)]
    return conditional_json(request, ModelList(data=cards))

"""The OpenAI chat-completions shapes Enclave accepts and returns (``/v1/chat/completions``, ``/v1/models``).

Requests follow OpenAI's schema closely enough for the official clients, LangChain and Open WebUI;
sampling parameters they send (temperature, max_tokens, …) are accepted and ignored: the operator
tunes generation for the site's model in settings. Enclave adds ``document_ids`` to the request (an
OpenAI client sends it in ``extra_body``; the model name picks the collections) and ``citations`` (and
``found``, ``standalone_question``) to the response and to the final stream chunk.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from service.jsontypes import JsonBool, numbers_only
from service.schemas import Citation, DocumentScope, scope_named

QUESTION_CHARS = 4000
TEXT = r"\S"  # at least one visible character

TextContent = Annotated[str, Field(max_length=100_000)]


class TextPart(BaseModel):
    type: Literal["text"]
    text: Annotated[str, Field(pattern=TEXT, max_length=QUESTION_CHARS)]


class SystemMessage(BaseModel):
    role: Literal["system", "developer"]
    content: TextContent | list[TextPart]
    name: str | None = None


QuestionText = Annotated[str, Field(pattern=TEXT, max_length=QUESTION_CHARS)]
QuestionParts = Annotated[list[TextPart], Field(min_length=1, max_length=16)]


class UserMessage(BaseModel):
    role: Literal["user"]
    content: QuestionText | QuestionParts
    name: str | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: TextContent | list[TextPart] | None = None
    name: str | None = None


class ToolMessage(BaseModel):
    role: Literal["tool"]
    content: TextContent | list[TextPart]
    tool_call_id: str


ChatMessageIn = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]
HAS_USER_TURN: dict[str, Any] = {
    "contains": {"type": "object", "properties": {"role": {"const": "user"}}, "required": ["role"]},
}


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; the last user message is the question, earlier turns are context."""

    model: str = Field(max_length=256, description="`enclave` (every collection you may see) or `enclave:<collection>`")
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200, json_schema_extra=HAS_USER_TURN)
    stream: JsonBool | None = False
    temperature: float | None = Field(default=None, ge=0, le=2, description="accepted and ignored")
    top_p: float | None = Field(default=None, ge=0, le=1, description="accepted and ignored")
    max_tokens: int | None = Field(default=None, ge=1, description="accepted and ignored (the operator's cap holds)")
    max_completion_tokens: int | None = Field(default=None, ge=1, description="accepted and ignored")
    n: Literal[1] | None = None
    user: str | None = Field(default=None, max_length=256)
    document_ids: DocumentScope = None

    _numbers = numbers_only("temperature", "top_p", "max_tokens", "max_completion_tokens", "n")
    _scope = scope_named("document_ids")

    @model_validator(mode="after")
    def _has_a_question(self) -> ChatCompletionRequest:
        if not any(isinstance(m, UserMessage) for m in self.messages):
            raise ValueError("messages must contain a user message: the last one is the question")
        return self


def message_text(content: str | list[TextPart] | None) -> str:
    """A message's text, whether sent as a string or as text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content)


class AssistantMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessageOut
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    """OpenAI's ``chat.completion`` plus Enclave's citations (the ``[n]`` markers in the content)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    citations: list[Citation] = Field(description="sources in rank order; `marker` is the [n] in the content")
    found: bool = Field(description="false when the answer is Enclave's explicit not-found")
    standalone_question: str = Field(description="the question Enclave searched for (follow-ups rewritten)")
    usage: None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "enclave"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]

"""The generator port: what the read path needs from a language model server.

Business logic imports this module only; adapters (``openai_generator``, ``factory``) live beside it.

Contract every adapter keeps:

* ``warm_up()`` starts or connects to the backend and raises :class:`GeneratorUnavailable` if it
  cannot; ``__init__`` never touches the network or spawns processes.
* ``stream()`` yields text deltas in order; their concatenation equals what ``complete()`` would
  return for the same (deterministic) request. A stream that ends before the backend said it was
  finished raises :class:`GeneratorUnavailable` instead of returning a silently truncated answer.
* A backend that cannot be reached raises :class:`GeneratorUnavailable` (503, retryable); one that
  does not answer within ``GenerationParams.timeout_s`` raises :class:`GeneratorTimeout` (504);
  any other refusal raises :class:`GeneratorError` with the backend's own message.
* Prompt and answer text are never logged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ingest.errors import EnclaveError

ROLES = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a chat prompt."""

    role: str  # "system" | "user" | "assistant"
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}, not {self.role!r}")

    def __repr__(self) -> str:
        # Prompt text must not leak into logs or tracebacks through repr().
        return f"ChatMessage(role={self.role!r}, content=<{len(self.content)} chars>)"


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and transport settings for one generation request."""

    max_tokens: int = 256
    temperature: float = 0.1
    stop: tuple[str, ...] = ()
    cache_salt: str | None = None  # per-tenant salt for vLLM's prefix cache; sent only when set
    frequency_penalty: float = 0.0  # discourages the loops small models fall into; sent only when non-zero
    timeout_s: float = 60.0
    # A JSON schema the answer must follow (vLLM's guided decoding, sent as an OpenAI
    # ``response_format``); its optional "title" names it. The answer is still returned as text.
    json_schema: Mapping[str, Any] | None = field(default=None, hash=False)


class GeneratorError(EnclaveError):
    """The generator refused or failed a request."""

    code = "generator_error"
    status = 502


class GeneratorUnavailable(GeneratorError):
    """The generator cannot be reached, or it went away while answering."""

    code = "generator_unavailable"
    status = 503
    retryable = True


class GeneratorTimeout(GeneratorError):
    """The generator did not answer within the request's timeout."""

    code = "generator_timeout"
    status = 504


class Generator(Protocol):
    """A chat model behind a process boundary (llama.cpp server, vLLM, ...)."""

    model_name: str

    def warm_up(self) -> None:
        """Start or connect to the backend.

        :raises GeneratorUnavailable: the backend cannot be started or reached.
        """
        ...

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        """Yield the answer as text deltas.

        :raises GeneratorUnavailable: unreachable, or the stream ended early.
        :raises GeneratorTimeout: no data within ``params.timeout_s``.
        :raises GeneratorError: the backend rejected the request.
        """
        ...

    def complete(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        """Return the whole answer; raises as :meth:`stream`."""
        ...

    def healthy(self) -> bool:
        """Whether the backend answers right now (cheap, bounded, never raises)."""
        ...

    def close(self) -> None:
        """Release connections and any process this generator owns. Idempotent."""
        ...

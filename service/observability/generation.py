"""A generator decorator that times, counts and traces every generation, adding no text anywhere."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ingest.errors import EnclaveError
from ingest.telemetry import span, tracer
from service.generation.port import ChatMessage, GenerationParams, Generator
from service.observability.metrics import GENERATOR_SECONDS, GENERATOR_TOKENS, GENERATOR_TTFT_SECONDS


def _outcome(exc: BaseException) -> str:
    return exc.code if isinstance(exc, EnclaveError) else "internal_error"


class InstrumentedGenerator(Generator):
    """Wraps any :class:`Generator`; ``generate`` spans carry the model, sizes and counts only."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner

    @property
    def model_name(self) -> str:  # type: ignore[override]
        return self.inner.model_name

    def warm_up(self) -> None:
        self.inner.warm_up()

    def complete(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        started = time.perf_counter()
        outcome = "ok"
        with span("generate", **self._attributes(messages, params, stream=False)) as current:
            try:
                text = self.inner.complete(messages, params)
            except BaseException as exc:
                outcome = _outcome(exc)
                raise
            finally:
                GENERATOR_SECONDS.labels(mode="complete", outcome=outcome).observe(time.perf_counter() - started)
            current.set_attribute("enclave.answer_chars", len(text))
            return text

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        # Not a *current* span: a streaming response pulls each delta in a fresh copy of the request's
        # context, so attaching here and detaching on a later pull would fail. The parent is explicit.
        current = tracer.start_span("generate", attributes=self._attributes(messages, params, stream=True))
        started = time.perf_counter()
        outcome, deltas = "ok", 0
        try:
            for delta in self.inner.stream(messages, params):
                if deltas == 0:
                    GENERATOR_TTFT_SECONDS.observe(time.perf_counter() - started)
                deltas += 1
                yield delta
        except BaseException as exc:
            outcome = _outcome(exc)
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            GENERATOR_SECONDS.labels(mode="stream", outcome=outcome).observe(time.perf_counter() - started)
            GENERATOR_TOKENS.inc(deltas)
            current.set_attribute("gen_ai.usage.output_tokens", deltas)
            current.end()

    def _attributes(
        self, messages: Sequence[ChatMessage], params: GenerationParams, *, stream: bool
    ) -> dict[str, AttributeValue]:
        return {
            "gen_ai.request.model": self.model_name,
            "gen_ai.request.max_tokens": params.max_tokens,
            "enclave.stream": stream,
            "enclave.prompt_messages": len(messages),
        }

    def healthy(self) -> bool:
        return self.inner.healthy()

    def close(self) -> None:
        self.inner.close()

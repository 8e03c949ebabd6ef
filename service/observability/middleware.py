"""One ASGI middleware per request: request id, server span, latency histogram by route template.

Pure ASGI (not ``BaseHTTPMiddleware``) so streamed answers pass through untouched and the latency
covers the whole response, up to its last byte. The span and the metric name the route template
that matched (``/v1/documents/{document_id}``), never the raw path; unmatched paths are
``unmatched`` so a scanner cannot blow up the metric's cardinality.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.telemetry import tracer
from service.observability.logs import (
    REQUEST_ID_HEADER,
    SERVER_REQUEST_ID_HEADER,
    accept_request_id,
    bind_request_id,
    bind_server_request_id,
    new_server_request_id,
    reset_request_id,
    reset_server_request_id,
)
from service.observability.metrics import HTTP_REQUEST_SECONDS

_HEADER = REQUEST_ID_HEADER.lower().encode("latin-1")
_SERVER_HEADER = SERVER_REQUEST_ID_HEADER.lower().encode("latin-1")
access = logging.getLogger("service.access")


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``unmatched``."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == _HEADER:
            return bytes(value).decode("latin-1")
    return None


class ObservabilityMiddleware:
    """Binds ``X-Request-ID`` (the caller's, if a plain token, else the server's) and echoes it, and binds and
    returns the server's own id (``X-Enclave-Request-ID``): a caller chooses the first, never the second."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        server_id = new_server_request_id()
        request_id = accept_request_id(_incoming_id(scope), server_id)
        token, server_token = bind_request_id(request_id), bind_server_request_id(server_id)
        status = 500
        started = time.perf_counter()
        method = scope.get("method", "GET")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (_HEADER, _SERVER_HEADER)]
                ids = [(_HEADER, request_id.encode("latin-1")), (_SERVER_HEADER, server_id.encode("latin-1"))]
                message = {**message, "headers": [*headers, *ids]}
            await send(message)

        with tracer.start_as_current_span(
            f"HTTP {method}", kind=SpanKind.SERVER, record_exception=False, set_status_on_exception=False
        ) as span:
            span.set_attributes(
                {
                    "http.request.method": method,
                    "enclave.request_id": request_id,
                    "enclave.server_request_id": server_id,
                }
            )
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, span, method, status, time.perf_counter() - started)
        # Reset only after a normal return: an unhandled error is logged further out, with this id.
        reset_request_id(token)
        reset_server_request_id(server_token)

    @staticmethod
    def _record(scope: Scope, span: Span, method: str, status: int, elapsed: float) -> None:
        route = route_template(scope)
        span.update_name(f"{method} {route}")
        span.set_attributes({"http.route": route, "http.response.status_code": status})
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        HTTP_REQUEST_SECONDS.labels(method=method, route=route, status=str(status)).observe(elapsed)
        access.info("http.request method=%s route=%s status=%d duration_ms=%d", method, route, status, elapsed * 1000)

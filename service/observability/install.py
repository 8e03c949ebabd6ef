"""What the application factory installs for operations: request ids, spans and latency metrics on every
request, the ``/metrics`` route, and the timing wrapper of the generator."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig
from pydantic import SecretStr

from ingest.config import Settings
from service.auth.errors import Unauthenticated
from service.generation.port import Generator
from service.observability.generation import InstrumentedGenerator
from service.observability.metrics import CONTENT_TYPE_LATEST, refresh_queue_depth, render
from service.observability.middleware import ObservabilityMiddleware
from service.observability.tracing import configure_tracing

# FastAPI's own OpenTelemetry layer is off: its log records carry validation inputs (query text) and
# exception messages, and its spans would duplicate ObservabilityMiddleware's content-free ones.
FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def instrument(generator: Generator) -> Generator:
    """The generator, timed and traced (idempotent)."""
    return generator if isinstance(generator, InstrumentedGenerator) else InstrumentedGenerator(generator)


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Request ids, server spans and latency metrics for every request; ``/metrics`` unless disabled
    (behind a bearer token when ``ENCLAVE_OBSERVABILITY__METRICS_TOKEN`` is set)."""
    configure_tracing(settings)
    app.add_middleware(ObservabilityMiddleware)
    if settings.observability.metrics_enabled:
        app.add_api_route(
            "/metrics", _metrics_route(settings.observability.metrics_token), methods=["GET"], include_in_schema=False
        )


def _metrics_route(token: SecretStr | None) -> Callable[[Request], Response]:
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None

    def metrics(request: Request) -> Response:
        """:raises Unauthenticated: a token is configured and the request does not carry it."""
        given = request.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            raise Unauthenticated()
        state = getattr(request.app.state, "enclave", None)
        if state is not None:
            refresh_queue_depth(state.components.engine)
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    return metrics

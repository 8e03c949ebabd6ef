"""Operations: Prometheus metrics, OpenTelemetry traces and JSON logs with request ids.

``install_observability(app, settings)`` is all the application factory calls; the CLI calls
``configure_logging`` and ``configure_tracing`` once per process. Nothing here records document or
query text: only identifiers, counts, sizes, durations and route templates.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig

from ingest.config import Settings
from service.generation.port import Generator
from service.observability.generation import InstrumentedGenerator
from service.observability.logs import configure_logging, current_request_id
from service.observability.metrics import CONTENT_TYPE_LATEST, refresh_queue_depth, render
from service.observability.middleware import ObservabilityMiddleware
from service.observability.tracing import configure_tracing

__all__ = [
    "FASTAPI_TELEMETRY", "configure_logging", "configure_tracing", "current_request_id", "install_observability",
    "instrument",
]


# FastAPI's own OpenTelemetry layer is off: its log records carry validation inputs (query text) and
# exception messages, and its spans would duplicate ObservabilityMiddleware's content-free ones.
FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def instrument(generator: Generator) -> Generator:
    """The generator, timed and traced (idempotent)."""
    return generator if isinstance(generator, InstrumentedGenerator) else InstrumentedGenerator(generator)


def install_observability(app: FastAPI, settings: Settings) -> None:
    """Request ids, server spans and latency metrics for every request; ``/metrics`` unless disabled."""
    configure_tracing(settings)
    app.add_middleware(ObservabilityMiddleware)
    if settings.observability.metrics_enabled:
        app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)


def _metrics(request: Request) -> Response:
    state = getattr(request.app.state, "enclave", None)
    if state is not None:
        refresh_queue_depth(state.components.engine)
    return Response(render(), media_type=CONTENT_TYPE_LATEST)

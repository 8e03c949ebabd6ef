"""OpenTelemetry tracing: off unless ``ENCLAVE_OBSERVABILITY__TRACES_EXPORTER`` is ``console`` or ``otlp``.

Off means no tracer provider is installed and every span in Enclave is the API's no-op span: no
exporter, no thread, no network. ``otlp`` sends OTLP/HTTP (protobuf) to
``ENCLAVE_OBSERVABILITY__OTLP_ENDPOINT`` (a collector on the premises), batched in a background
thread; ``console`` writes finished spans to stdout, for debugging.
"""

from __future__ import annotations

import logging
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from ingest.config import ObservabilitySettings, Settings

log = logging.getLogger(__name__)
_lock = threading.Lock()
_installed: TracerProvider | None = None


def build_tracer_provider(cfg: ObservabilitySettings) -> TracerProvider | None:
    """A provider exporting as configured, or None when tracing is off. Does not install it."""
    if cfg.traces_exporter == "none":
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": cfg.service_name, "service.version": "0.1.0"}),
        sampler=ParentBased(TraceIdRatioBased(cfg.trace_sample_ratio)),
    )
    if cfg.traces_exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(cfg.otlp_endpoint)))
    return provider


def _otlp_exporter(endpoint: str | None) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # lazy: protobuf and HTTP, when tracing is on
        OTLPSpanExporter,
    )

    return OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()


def configure_tracing(settings: Settings) -> TracerProvider | None:
    """Install the configured provider process-wide, once; later calls return the first one."""
    global _installed
    with _lock:
        if _installed is None:
            provider = build_tracer_provider(settings.observability)
            if provider is not None:
                trace.set_tracer_provider(provider)
                _installed = provider
                log.info("tracing.enabled exporter=%s", settings.observability.traces_exporter)
        return _installed


def shutdown_tracing() -> None:
    """Flush and stop the installed exporter (end of process)."""
    if _installed is not None:
        _installed.shutdown()

"""Traces and metrics of the write path, shared with the read path.

Spans go through the OpenTelemetry API only: without a configured tracer provider (the default,
see ``service.observability.tracing``) every span is a no-op. Metrics are Prometheus collectors
in the process-wide registry; ``/metrics`` in the service exposes them.

What may be recorded: identifiers (document, job, tenant), counts, sizes, durations, component
names and error *codes*. Never document text, query text, prompts, answers or exception messages
(a message can quote the input); :func:`span` therefore records only the exception's type.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from prometheus_client import Counter, Histogram

P = ParamSpec("P")
R = TypeVar("R")

tracer = trace.get_tracer("enclave")

INGEST_DOCUMENTS = Counter(
    "enclave_ingest_documents_total",
    "Ingest jobs finished, by outcome (ready, failed, retried).",
    ["outcome"],
)
INGEST_CHUNKS = Counter("enclave_ingest_chunks_total", "Chunks embedded and indexed.")
STAGE_SECONDS = Histogram(
    "enclave_stage_duration_seconds",
    "Duration of one pipeline stage (parse, chunk, embed, upsert, retrieve, ...).",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
AUDIT_WRITE_FAILURES = Counter(
    "enclave_audit_write_failures_total",
    "Audit records that could not be written, so the request failed closed; by exception type.",
    ["error"],
)


@contextmanager
def span(name: str, **attributes: AttributeValue) -> Iterator[Span]:
    """A span named ``name`` that also times the stage into ``enclave_stage_duration_seconds``.

    On an exception the span is marked as an error with the exception's type only, and the
    exception propagates unchanged.
    """
    started = time.perf_counter()
    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            current.set_attribute("error.type", type(exc).__name__)
            raise
        finally:
            STAGE_SECONDS.labels(stage=name).observe(time.perf_counter() - started)


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form of :func:`span`, for a function that is one stage."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with span(name):
                return func(*args, **kwargs)

        return wrapper

    return decorate


def annotate(**attributes: AttributeValue) -> None:
    """Add identifiers or counts to the current span (no-op without one)."""
    trace.get_current_span().set_attributes(attributes)


def record_audit_write_failure(error_type: str) -> None:
    """Count one audit write that failed (``error_type``: the exception's class name, never its message)."""
    AUDIT_WRITE_FAILURES.labels(error=error_type).inc()


def document_finished(outcome: str, chunks: int = 0) -> None:
    """Count one finished ingest attempt: ``ready`` (with its chunks), ``failed`` or ``retried``."""
    INGEST_DOCUMENTS.labels(outcome=outcome).inc()
    if chunks:
        INGEST_CHUNKS.inc(chunks)

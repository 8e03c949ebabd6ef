"""Prometheus metrics of the service, in the process-wide registry (``/metrics`` renders it).

Labels are low-cardinality and content-free: route *templates* (``/v1/documents/{document_id}``,
never the raw path), methods, status codes, outcomes, modes. Never a tenant-supplied string.

The write path's collectors (ingest counters, stage timings, audit write failures) live in
``ingest.telemetry`` because ``ingest`` never imports ``service``; they are re-exported here.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from ingest.store.models import Job, JobStatus
from ingest.telemetry import (
    AUDIT_WRITE_FAILURES,
    INGEST_CHUNKS,
    INGEST_DOCUMENTS,
    STAGE_SECONDS,
    record_audit_write_failure,
)

__all__ = [
    "AUDIT_WRITE_FAILURES",
    "CONTENT_TYPE_LATEST",
    "GENERATOR_SECONDS",
    "GENERATOR_TOKENS",
    "GENERATOR_TTFT_SECONDS",
    "HTTP_REQUEST_SECONDS",
    "INGEST_CHUNKS",
    "INGEST_DOCUMENTS",
    "QUEUE_DEPTH",
    "STAGE_SECONDS",
    "record_audit_write_failure",
    "refresh_queue_depth",
    "render",
]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

HTTP_REQUEST_SECONDS = Histogram(
    "enclave_http_request_duration_seconds",
    "HTTP request latency until the last byte of the response, by route template.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_DEPTH = Gauge("enclave_ingest_queue_depth", "Ingest jobs waiting or running, read at scrape time.", ["status"])
GENERATOR_SECONDS = Histogram(
    "enclave_generator_duration_seconds",
    "Generation latency (request to last token), by mode (complete, stream) and outcome (ok, error code).",
    ["mode", "outcome"],
    buckets=LATENCY_BUCKETS,
)
GENERATOR_TTFT_SECONDS = Histogram(
    "enclave_generator_time_to_first_token_seconds",
    "Streamed generations: request to first text delta.",
    buckets=LATENCY_BUCKETS,
)
GENERATOR_TOKENS = Counter(
    "enclave_generator_completion_tokens_total",
    "Completion tokens generated, counted as streamed deltas (one token each from llama.cpp and vLLM).",
)


def refresh_queue_depth(engine: Engine) -> None:
    """Set the queue-depth gauge from the durable job table (shared by every worker process)."""
    with Session(engine) as session:
        rows = session.exec(select(Job.status, func.count()).group_by(Job.status)).all()
    counts = {str(status): int(count) for status, count in rows}
    for status in (JobStatus.queued, JobStatus.running):
        QUEUE_DEPTH.labels(status=status.value).set(counts.get(str(status), 0))


def render() -> bytes:
    """The registry in Prometheus' text exposition format."""
    return generate_latest(REGISTRY)

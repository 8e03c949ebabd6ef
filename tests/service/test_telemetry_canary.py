"""No document or query text in metrics, traces or logs: proven with canary strings end to end.

A document carrying one canary is uploaded and ingested, and questions carrying another are asked
(answer, stream, search) through the real API, embedder, index and llama.cpp server, with every
span kept in memory and every log record (DEBUG and up) captured as JSON. Neither canary may appear
anywhere; the spans and metrics that operators rely on must be there.
"""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.observability.logs import configure_logging
from tests import conftest
from tests.conftest import make_settings, served_app

# The dev API key fixture arrives with authentication; before it, requests need no header.
AUTH: dict[str, str] = getattr(conftest, "DEV_HEADERS", {})
DOC_CANARY = f"zq{uuid.uuid4().hex[:12]}doc"
QUERY_CANARY = f"zq{uuid.uuid4().hex[:12]}ask"
DOCUMENT = (
    f"Master services agreement between Acme Corp and Globex Ltd. Project codename {DOC_CANARY}.\n\n"
    "Governing law. This agreement is governed by the laws of the State of Delaware.\n\n"
    f"Termination. Either party may terminate on ninety days written notice. Reference {DOC_CANARY}.\n"
)


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(
        make_settings(tmp_path_factory.mktemp("logs"), log_format="json", log_level="DEBUG"), stream
    )
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator, spans, logs) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    # generative: the answers go through the model, so the generator's metrics and spans are exercised too
    settings = make_settings(tmp_path_factory.mktemp("canary") / "data", answer={"mode": "generative"})
    with served_app(settings, embedder, parser, generator, headers={}) as (test_client, _):
        yield test_client


@pytest.fixture(scope="module")
def exercised(client: TestClient) -> dict[str, str]:
    """Upload, ingest, answer (plain and streamed), search, show; returns ids seen on the way."""
    upload = client.post(
        "/v1/documents", files={"file": ("msa.txt", DOCUMENT.encode())}, headers={**AUTH, "X-Request-ID": "rid-upload"}
    )
    assert upload.status_code == 202, upload.text
    document_id = upload.json()["document_id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/documents/{document_id}", headers=AUTH).json()["status"] not in ("ready", "failed"):
        assert time.monotonic() < deadline, "ingest did not finish"
        time.sleep(0.2)
    question = f"Which law governs the agreement with Globex, project {QUERY_CANARY}?"
    answer = client.post("/v1/query", json={"query": question}, headers={**AUTH, "X-Request-ID": "rid-query"})
    assert answer.status_code == 200 and answer.json()["found"], answer.text
    with client.stream("POST", "/v1/query", json={"query": question, "stream": True}, headers=AUTH) as streamed:
        assert "event: answer" in "".join(streamed.iter_text())
    assert (
        client.post("/v1/search", json={"query": f"termination notice {QUERY_CANARY}"}, headers=AUTH).status_code == 200
    )
    return {"document_id": document_id}


def _span_text(span: ReadableSpan) -> str:
    parts = [span.name, json.dumps(dict(span.attributes or {}), default=str), str(span.status.description)]
    parts += [event.name + json.dumps(dict(event.attributes or {}), default=str) for event in span.events]
    parts += [json.dumps(dict(link.attributes or {}), default=str) for link in span.links]
    return "\n".join(parts)


def test_no_canary_in_metrics(client: TestClient, exercised: dict[str, str]) -> None:
    text = client.get("/metrics").text
    assert DOC_CANARY not in text and QUERY_CANARY not in text
    assert exercised["document_id"] not in text  # raw paths never become labels
    assert 'route="/v1/documents/{document_id}"' in text and 'route="/v1/query"' in text
    assert float(text.split("\nenclave_ingest_chunks_total ")[1].split()[0]) >= 1
    assert 'enclave_ingest_documents_total{outcome="ready"}' in text
    assert 'enclave_generator_duration_seconds_count{mode="stream",outcome="ok"}' in text
    assert 'enclave_ingest_queue_depth{status="queued"} 0.0' in text


def test_no_canary_in_spans_and_the_pipeline_is_traced(spans: InMemorySpanExporter, exercised: dict[str, str]) -> None:
    finished = spans.get_finished_spans()
    assert finished
    for span in finished:
        text = _span_text(span)
        assert DOC_CANARY not in text and QUERY_CANARY not in text, span.name
    names = {span.name for span in finished}
    for stage in (
        "ingest.parse",
        "ingest.chunk",
        "ingest.embed",
        "ingest.upsert",
        "POST /v1/query",
        "retrieve",
        "retrieve.embed_query",
        "retrieve.search",
        "generate",
    ):
        assert stage in names, stage
    parse = next(s for s in finished if s.name == "ingest.parse")
    assert parse.attributes and parse.attributes["pages"] == 1 and parse.attributes["mime"] == "text/plain"
    query = next(
        s for s in finished if s.name == "POST /v1/query" and s.attributes["enclave.request_id"] == "rid-query"
    )
    children = {s.name for s in finished if s.context.trace_id == query.context.trace_id}
    assert {"retrieve", "retrieve.search", "generate"} <= children


def test_no_canary_in_logs_and_request_records_carry_their_id(logs: io.StringIO, exercised: dict[str, str]) -> None:
    records = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert records
    raw = logs.getvalue()
    assert DOC_CANARY not in raw and QUERY_CANARY not in raw
    ids = {r["request_id"] for r in records if r["logger"] == "service.access"}
    assert {"rid-upload", "rid-query"} <= ids

"""Metrics, request ids, JSON logs and the trace exporters, without the heavy components."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest.config import ObservabilitySettings
from service.app import create_app
from service.observability.logs import bind_request_id, configure_logging, reset_request_id
from service.observability.tracing import build_tracer_provider
from tests.conftest import REPO, make_settings


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    # No lifespan: health, metrics and routing work without the components.
    return TestClient(create_app(make_settings(tmp_path / "data")))


def _count(metrics: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix))


def test_request_id_is_echoed_when_plain_and_replaced_when_it_could_forge_a_log_line(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "req-42.a:b"}).headers["x-request-id"] == "req-42.a:b"
    forged = client.get("/healthz", headers={"X-Request-ID": 'x" level=ERROR injected'}).headers["x-request-id"]
    generated = client.get("/healthz").headers["x-request-id"]
    for value in (forged, generated):
        assert len(value) == 32 and int(value, 16) >= 0
    assert forged != generated
    named = client.get("/healthz", headers={"X-Request-ID": "req-42.a:b"}).headers
    unnamed = client.get("/healthz").headers
    assert named["x-enclave-request-id"] != "req-42.a:b" and len(named["x-enclave-request-id"]) == 32
    assert unnamed["x-enclave-request-id"] == unnamed["x-request-id"]  # no caller id: the server's, once


def test_latency_histogram_is_labelled_by_route_template_never_by_raw_path(client: TestClient) -> None:
    before = client.get("/metrics").text
    client.get("/healthz")
    client.get("/probe/unlikely-path-7c1e")
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    prefix = 'enclave_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}'
    assert _count(after.text, prefix) == _count(before, prefix) + 1
    assert 'route="unmatched",status="404"' in after.text
    assert "unlikely-path-7c1e" not in after.text


def test_metrics_lists_every_operational_family(client: TestClient) -> None:
    text = client.get("/metrics").text
    for family in (
        "enclave_http_request_duration_seconds",
        "enclave_ingest_documents_total",
        "enclave_ingest_chunks_total",
        "enclave_generator_duration_seconds",
        "enclave_generator_completion_tokens_total",
        "enclave_audit_write_failures_total",
        "enclave_ingest_queue_depth",
        "enclave_stage_duration_seconds",
    ):
        assert f"# TYPE {family.removesuffix('_total')}" in text, family


def test_metrics_endpoint_can_be_turned_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", observability={"metrics_enabled": False})
    assert TestClient(create_app(settings)).get("/metrics").status_code == 404


def test_a_failed_audit_write_is_counted_by_error_type_only() -> None:
    from ingest.audit.trail import _unavailable
    from service.observability.metrics import AUDIT_WRITE_FAILURES

    counter = AUDIT_WRITE_FAILURES.labels(error="OSError")
    before = counter._value.get()
    message = _unavailable(OSError("disk full under /secret/path"))
    assert "fail closed" in message and counter._value.get() == before + 1


@pytest.fixture
def json_log(tmp_path: Path) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging(make_settings(tmp_path, log_format="json", log_level="INFO"), stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_json_logs_carry_the_request_id_and_extra_fields(json_log: io.StringIO) -> None:
    token = bind_request_id("rid-7")
    try:
        logging.getLogger("enclave.test").info("job.done document=%s", "d1", extra={"chunks": 3})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("enclave.test").exception("failed")
    finally:
        reset_request_id(token)
    first, second = (json.loads(line) for line in json_log.getvalue().splitlines())
    assert first["request_id"] == "rid-7" and first["message"] == "job.done document=d1" and first["chunks"] == 3
    assert first["level"] == "INFO" and first["logger"] == "enclave.test" and first["ts"].endswith("+00:00")
    assert second["exc_type"] == "ValueError" and "Traceback" in second["exception"]


def test_json_log_lines_of_a_request_share_its_id(json_log: io.StringIO, client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "rid-route-1"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "rid-route-1"
    # The test client's own httpx record is the caller's, not the service's.
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if '"logger": "httpx' not in line]
    access = [line for line in lines if line["logger"] == "service.access"]
    assert access and access[-1]["message"].startswith("http.request method=GET route=/healthz status=200")
    assert all(line["request_id"] == "rid-route-1" for line in lines)


def test_tracing_is_off_by_default_and_builds_an_exporter_only_when_asked() -> None:
    assert ObservabilitySettings().traces_exporter == "none"
    assert build_tracer_provider(ObservabilitySettings()) is None
    assert build_tracer_provider(ObservabilitySettings(traces_exporter="console")) is not None


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, int]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], len(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_otlp_exporter_sends_spans_to_the_configured_collector() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}/v1/traces"
        provider = build_tracer_provider(ObservabilitySettings(traces_exporter="otlp", otlp_endpoint=endpoint))
        assert provider is not None
        with provider.get_tracer("test").start_as_current_span("ingest.parse"):
            pass
        assert provider.force_flush(10_000)
        provider.shutdown()
    finally:
        server.shutdown()
    assert _Collector.received and _Collector.received[0][0] == "/v1/traces"
    assert _Collector.received[0][1] == "application/x-protobuf" and _Collector.received[0][2] > 0


CONSOLE_PROBE = """
from fastapi.testclient import TestClient
from service.app import create_app
from ingest.config import Settings
TestClient(create_app(Settings(data_dir={data!r}))).get("/healthz")
from service.observability.tracing import shutdown_tracing
shutdown_tracing()
"""


@pytest.mark.parametrize("exporter", ["none", "console"])
def test_console_exporter_is_chosen_by_settings(exporter: str, tmp_path: Path) -> None:
    env = {**os.environ, "ENCLAVE_OBSERVABILITY__TRACES_EXPORTER": exporter}
    run = subprocess.run(
        [sys.executable, "-c", CONSOLE_PROBE.format(data=str(tmp_path / "data"))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert ('"name": "GET /healthz"' in run.stdout) is (exporter == "console"), run.stdout[-2000:]


def test_metrics_behind_a_token_answer_401_without_it(tmp_path: Path) -> None:
    token = "metrics-scraper-token-3f9a1c02"
    guarded = TestClient(create_app(make_settings(tmp_path / "data", observability={"metrics_token": token})))
    for headers in ({}, {"Authorization": "Bearer wrong-token-000000000"}, {"Authorization": token}):
        refused = guarded.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert refused.json()["error"]["code"] == "unauthenticated" and "enclave_" not in refused.text
    allowed = guarded.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status_code == 200 and "enclave_http_request_duration_seconds" in allowed.text
    with pytest.raises(ValueError, match="at least 16"):
        make_settings(tmp_path / "data", observability={"metrics_token": "short"})

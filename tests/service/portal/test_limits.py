"""What one portal may take: body size (413) and request rate per principal (429 with Retry-After)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from fastapi.testclient import TestClient

from ingest.config import ApiSettings
from service.app import create_app
from service.limits import TokenBuckets
from tests.service.portal.conftest import Portal, bearer, reader_key, wait_ready


def test_oversized_json_is_refused_with_413_whether_declared_or_streamed(portal: Portal) -> None:
    limit = portal.settings.api.max_request_bytes
    padding = "x" * (limit + 10)
    with portal.http() as http:
        declared = http.post("/v1/query", json={"query": "q", "collections": [padding]})
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it arrives
            yield b'{"query": "q", "collections": ["'
            for _ in range(limit // 65536 + 2):
                yield b"y" * 65536
            yield b'"]}'

        streamed = http.post("/v1/query", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413 and streamed.json()["error"]["type"] == "request_too_large"
        fine = http.post("/v1/search", json={"query": "courier", "k": 1})
        assert fine.status_code == 200


def test_uploads_get_the_upload_limit_not_the_json_limit(portal: Portal) -> None:
    body = bytes(range(256)) * (portal.settings.api.max_request_bytes // 200)  # binary: the worker rejects it at once
    with portal.http() as http:
        accepted = http.post("/v1/documents", files={"file": ("big.bin", body)}, data={"collection": "big"})
    assert len(body) > portal.settings.api.max_request_bytes and accepted.status_code == 202, accepted.text


def test_a_principal_over_its_rate_gets_429_and_others_are_unaffected(portal: Portal) -> None:
    tight = portal.settings.model_copy(update={"api": ApiSettings(rate_limit_per_s=0.5, rate_limit_burst=3)})
    other = bearer(reader_key(portal, "portal-rate"))
    with TestClient(create_app(tight, portal.state), headers=portal.headers) as client:
        statuses = [client.get("/v1/models").status_code for _ in range(4)]
        refused = client.get("/v1/documents")
        assert client.get("/v1/models", headers=other).status_code == 200  # its own bucket
        assert client.get("/healthz").status_code == 200  # probes are never throttled
    assert statuses == [200, 200, 200, 429] and refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) == 2


def test_one_busy_principal_does_not_drain_another_s_bucket() -> None:
    buckets = TokenBuckets(rate_per_s=1.0, burst=2)
    assert [buckets.take("portal-a", now=0.0) for _ in range(3)] == [0.0, 0.0, 1.0]
    assert buckets.take("portal-b", now=0.0) == 0.0
    assert buckets.take("portal-a", now=1.0) == 0.0  # refilled at the configured rate


def test_document_listing_filters_by_status_and_collection(portal: Portal) -> None:
    with portal.http() as http:
        accepted = http.post(
            "/v1/documents", files={"file": ("bin.bin", bytes(range(256)) * 8)}, data={"collection": "filters"}
        ).json()
        assert wait_ready(http, accepted["document_id"])["status"] == "failed"
        failed = http.get("/v1/documents", params={"collection": "filters", "status": "failed"}).json()
        ready = http.get("/v1/documents", params={"collection": "filters", "status": "ready"}).json()
        bad = http.get("/v1/documents", params={"status": "half-done", "limit": 0})
    assert [d["id"] for d in failed["documents"]] == [accepted["document_id"]] and failed["total"] == 1
    assert ready["documents"] == [] and ready["total"] == 0 and ready["next"] is None
    assert bad.status_code == 422 and set(bad.json()["error"]) == {"message", "type", "param", "code"}


def test_every_operation_documents_the_error_envelope(portal: Portal) -> None:
    schema = httpx.get(f"{portal.url}/openapi.json", trust_env=False).json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses or "ErrorEnvelope" in str(responses["422"]), (method, path)
            assert "ErrorEnvelope" in str(responses.get("4XX")), (method, path)
    assert "HTTPValidationError" not in schema["components"]["schemas"]

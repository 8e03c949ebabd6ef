"""/v1/documents over HTTP: new versions (PUT), the upload size limit, job progress, OCR'd citations.

Real components and the real llama.cpp server, through FastAPI's in-process client.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import CUAD, DOCS, make_settings, served_app

LIMIT = 200_000
CONTRACTS = [p for p in sorted((CUAD / "contracts").glob("*.txt")) if 5_000 < p.stat().st_size < 15_000]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("versions-api") / "data", max_upload_bytes=LIMIT)
    with served_app(settings, embedder, parser, generator) as (test_client, _):
        yield test_client


def _wait(client: TestClient, document_id: str, version: int = 1, timeout: float = 180) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/documents/{document_id}").json()
        job = body.get("job") or {}
        if job.get("version", 1) == version and job.get("status") in ("done", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"document {document_id} version {version} not finished: {body}")


def test_over_the_size_limit_is_a_clear_413_on_post_and_put(client: TestClient) -> None:
    big = b"x" * (LIMIT + 1)
    posted = client.post("/v1/documents", files={"file": ("huge.txt", big)})
    assert posted.status_code == 413, posted.text
    error = posted.json()["error"]
    assert error["code"] == "document_too_large" and "ENCLAVE_MAX_UPLOAD_BYTES" in error["message"]
    assert error["param"] == "file" and str(LIMIT) in error["message"]
    document_id = client.post("/v1/documents", files={"file": ("small.txt", b"a small note\n")}).json()["document_id"]
    put = client.put(f"/v1/documents/{document_id}", files={"file": ("huge.txt", big)})
    assert put.status_code == 413 and put.json()["error"]["code"] == "document_too_large"


def test_put_replaces_the_version_and_the_job_shows_progress(client: TestClient) -> None:
    first = client.post(
        "/v1/documents", files={"file": ("msa.txt", CONTRACTS[0].read_bytes())}, data={"collection": "msa"}
    )
    document_id = first.json()["document_id"]
    v1 = _wait(client, document_id)
    assert (v1["status"], v1["version"], v1["job"]["pages_done"]) == ("ready", 1, 1)
    assert v1["job"]["chunks_done"] == v1["chunk_count"] > 0

    put = client.put(f"/v1/documents/{document_id}", files={"file": ("msa-v2.txt", CONTRACTS[1].read_bytes())})
    assert put.status_code == 202, put.text
    assert put.json()["job_id"] and not put.json()["duplicate"]
    busy = client.put(f"/v1/documents/{document_id}", files={"file": ("msa-v3.txt", CONTRACTS[2].read_bytes())})
    v2 = _wait(client, document_id, version=2)
    assert busy.status_code in (202, 409)  # 409 while version 2 is queued or running, else it queued version 3
    if busy.status_code == 409:
        assert busy.json()["error"]["code"] == "conflict" and "still being ingested" in busy.json()["error"]["message"]
    assert (v2["status"], v2["version"], v2["filename"], v2["collection"]) == ("ready", 2, "msa-v2.txt", "msa")
    query = {"query": CONTRACTS[1].read_text(encoding="utf-8")[300:500], "k": 5, "collections": ["msa"]}
    results = client.post("/v1/search", json=query).json()["results"]
    assert results and all(r["document_id"] == document_id for r in results)
    assert all(r["ocr"] is False for r in results)


def test_put_of_a_missing_document_is_404(client: TestClient) -> None:
    response = client.put("/v1/documents/nope", files={"file": ("a.txt", b"text\n")})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_scanned_pdf_citations_say_ocr(client: TestClient) -> None:
    path: Path = DOCS / "scanned" / "c03-29.pdf"
    document_id = client.post(
        "/v1/documents", files={"file": (path.name, path.read_bytes())}, data={"collection": "scans"}
    ).json()["document_id"]
    assert _wait(client, document_id)["status"] == "ready"
    query = {"query": "a good going-over in the morning from old Miss Watson", "k": 3, "collections": ["scans"]}
    top = client.post("/v1/search", json=query).json()["results"][0]
    assert (top["document_id"], top["page"], top["ocr"]) == (document_id, 1, True)

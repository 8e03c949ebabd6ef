"""The typed client: congruent with the live OpenAPI schema, and working end to end (also as the CLI's remote mode)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from service.client import EnclaveAPIError, EnclaveClient, Operation, operations
from service.schemas import QueryRequest, QueryResponse
from tests.service.portal.conftest import Portal

# Operations the client must offer in full (others' new routes get a client method when they settle).
COVERED_PREFIXES = ("/v1/query", "/v1/search", "/v1/chat", "/v1/models", "/v1/webhooks")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else node


def _fields(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    names = {f.alias or n for n, f in model.model_fields.items()}
    return names, {f.alias or n for n, f in model.model_fields.items() if f.is_required()}


def problems(schema: dict[str, Any], name: str, op: Operation) -> list[str]:
    """How the client method ``name`` disagrees with the schema (empty when it agrees)."""
    found = schema["paths"].get(op.path, {}).get(op.method.lower())
    if found is None:
        return [f"{name}: {op.method} {op.path} is not in the schema"]
    issues: list[str] = []
    ok = next(v for k, v in found["responses"].items() if k.startswith("2"))
    ref = ok.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    if not ref.endswith("/" + op.response.__name__):
        issues.append(f"{name}: responds {ref or 'nothing'}, client parses {op.response.__name__}")
    content = found.get("requestBody", {}).get("content", {})
    if op.body is not None:
        body = _resolve(schema, content.get("application/json", {}).get("schema", {}))
        names, required = _fields(op.body)
        if set(body.get("properties", {})) != names or set(body.get("required", [])) != required:
            issues.append(f"{name}: body fields {sorted(body.get('properties', {}))} vs client {sorted(names)}")
    if op.form:
        form = _resolve(schema, content.get("multipart/form-data", {}).get("schema", {}))
        if set(form.get("properties", {})) != set(op.form):
            issues.append(f"{name}: form fields {sorted(form.get('properties', {}))} vs client {sorted(op.form)}")
    params = {(p["in"], p["name"]) for p in found.get("parameters", [])}
    issues += [f"{name}: no query parameter {q!r}" for q in op.query if ("query", q) not in params]
    return issues


@pytest.fixture(scope="module")
def schema(portal: Portal) -> dict[str, Any]:
    return httpx.get(f"{portal.url}/openapi.json", trust_env=False).json()  # type: ignore[no-any-return]


def test_every_client_method_matches_the_live_openapi_schema(schema: dict[str, Any]) -> None:
    ops = operations()
    assert [issue for name, op in ops.items() for issue in problems(schema, name, op)] == []
    covered = {(op.method.lower(), op.path) for op in ops.values()}
    offered = {
        (method, path) for path, item in schema["paths"].items() for method in item if path.startswith(COVERED_PREFIXES)
    }
    assert offered - covered == set(), "operations the client does not offer"


def test_the_congruence_check_catches_drift(schema: dict[str, Any]) -> None:
    class Stale(BaseModel):
        query: str
        top_k: int

    assert problems(schema, "gone", Operation("GET", "/v1/answers", QueryResponse))
    assert problems(schema, "renamed", Operation("POST", "/v1/query", QueryResponse, body=Stale))
    assert problems(schema, "wrong_model", Operation("POST", "/v1/query", QueryRequest, body=QueryRequest))
    assert problems(schema, "bad_param", Operation("GET", "/v1/documents", QueryResponse, query=("page",)))


@pytest.fixture(scope="module")
def enclave(portal: Portal) -> EnclaveClient:
    key = portal.headers.get("Authorization", "").removeprefix("Bearer ") or None
    return EnclaveClient(portal.url, key)


def test_client_uploads_pages_and_answers(enclave: EnclaveClient) -> None:
    collection = f"paging-{uuid.uuid4().hex[:8]}"
    ids = [
        enclave.upload(
            f"Clause {i}: the supplier ships within {i + 2} days.".encode(), filename=f"c{i}.txt", collection=collection
        ).document_id
        for i in range(3)
    ]
    assert all(enclave.wait_for_document(i).status == "ready" for i in ids)
    first = enclave.list_documents(collection=collection, limit=2)
    assert first.total == 3 and len(first.documents) == 2 and first.next is not None
    rest = enclave.list_documents(collection=collection, limit=2, offset=2)
    assert rest.next is None and {d.id for d in first.documents + rest.documents} == set(ids)
    assert {d.id for d in enclave.iter_documents(collection=collection, page_size=1)} == set(ids)
    assert enclave.list_documents(collection=collection, status="failed").total == 0
    answer = enclave.query("What is the boiling point of liquid nitrogen in Kelvin?", collections=[collection])
    assert answer.found is False and answer.citations == []
    with pytest.raises(EnclaveAPIError) as missing:
        enclave.get_document("no-such-document")
    assert missing.value.status == 404 and missing.value.code == "not_found"


def test_listing_etag_answers_304_until_something_changes(portal: Portal) -> None:
    collection = f"etag-{uuid.uuid4().hex[:8]}"
    with portal.http() as http:
        first = http.get("/v1/documents", params={"collection": collection})
        tag = first.headers["etag"]
        unchanged = http.get("/v1/documents", params={"collection": collection}, headers={"If-None-Match": tag})
        assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == tag
        http.post(
            "/v1/documents",
            files={"file": ("e.txt", b"etag test " + uuid.uuid4().bytes.hex().encode())},
            data={"collection": collection},
        )
        changed = http.get("/v1/documents", params={"collection": collection}, headers={"If-None-Match": tag})
        assert changed.status_code == 200 and changed.headers["etag"] != tag and changed.json()["total"] == 1


def _cli(portal: Portal, *args: str) -> subprocess.CompletedProcess[str]:
    key = portal.headers.get("Authorization", "").removeprefix("Bearer ")
    auth = ["--api-key", key] if key else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "service", "--url", portal.url, *auth, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_cli_remote_mode_ingests_asks_and_reports_status(portal: Portal, tmp_path: Any) -> None:
    note = tmp_path / "remote-note.txt"
    note.write_text(f"Remote ingest note {uuid.uuid4().hex}: the courier collects parcels on Tuesdays.\n")
    ingested = _cli(portal, "ingest", str(note), "--collection", "remote")
    assert ingested.returncode == 0, ingested.stderr
    assert re.search(r"\b1 ok\b.*\b0 failed\b", ingested.stdout), ingested.stdout
    asked = _cli(portal, "ask", "What is the boiling point of liquid nitrogen in Kelvin?")
    assert asked.returncode == 0 and "Not found in your documents." in asked.stdout
    status = _cli(portal, "status")
    assert status.returncode == 0 and "ready" in status.stdout and portal.url in status.stdout
    refused = _cli(portal, "serve")
    assert refused.returncode == 2 and "--url works with ask, ingest, status" in refused.stderr


def test_an_exported_enclave_url_leaves_local_admin_commands_local(tmp_path: Any) -> None:
    env = {**os.environ, "ENCLAVE_URL": "http://127.0.0.1:9", "ENCLAVE_DATA_DIR": str(tmp_path)}
    listed = subprocess.run(
        [sys.executable, "-m", "service", "keys", "list"], capture_output=True, text=True, timeout=180, env=env
    )
    assert listed.returncode == 0, listed.stderr
    explicit = subprocess.run(
        [sys.executable, "-m", "service", "--url", "http://127.0.0.1:9", "keys", "list"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert explicit.returncode == 2 and "--url works with" in explicit.stderr

"""Schema fuzzing: schemathesis with all of its checks against the live server's own OpenAPI schema.

Zero 5xx, every response as documented (status, content type, headers, body schema; errors in the
one envelope), invalid requests refused, valid ones accepted. The rate limiter is off on the target,
so every request reaches the logic (a 429 fails the run), and the schema's links let the stateful
phase follow a new document to the routes that need one. Bounded so it fits CI: a fixed seed,
``MAX_EXAMPLES`` cases per operation and phase, no shrinking. The few allowances (rules a JSON
schema cannot state) live in ``schemathesis.toml`` beside this file, each with its reason.

The cases schemathesis once found are kept below as fixed requests: for each, the schema's verdict
(the JSON Schema validator schemathesis itself uses) and the server's must agree.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest

from ingest.audit.trail import AuditFilter
from ingest.config import ApiSettings, WebhookSettings
from tests.service.portal.conftest import Portal, start_portal, stop_portal

pytestmark = pytest.mark.slow
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 20
SEED = 20240501
MIN_OPERATIONS = 20


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator) -> Iterator[Portal]:  # type: ignore[no-untyped-def]
    """Its own server and data: fuzzed webhooks and uploads must not reach the other tests.

    No webhook target is allowed (``allow_public=False``, no allowed hosts): a fuzzed URL is refused at
    registration without a DNS query, so nothing is ever sent to a generated host. No rate limit (0).
    """
    server, running = start_portal(
        tmp_path_factory.mktemp("fuzz") / "data",
        embedder,
        parser,
        generator,
        webhooks=WebhookSettings(timeout_s=0.5, max_attempts=1, allow_public=False),
        api=ApiSettings(rate_limit_per_s=0),
    )
    yield running
    stop_portal(server, running)


def _audited(target: Portal, action: str) -> list[str]:
    trail = target.components.compliance.audit
    records = trail.search(AuditFilter(target.settings.default_tenant, action=action, limit=1000))
    return [r.outcome for r in records]


def test_schemathesis_all_checks_find_nothing(target: Portal, tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{target.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--no-shrink",
        "--workers",
        "1",
        "--suppress-health-check",
        "all",
        "--request-timeout",
        "120",
        "--header",
        f"Authorization: {target.headers['Authorization']}",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = run.stdout[-12000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    tested = re.search(r"Tested:\s+(\d+)", run.stdout)
    assert tested is not None and int(tested.group(1)) >= MIN_OPERATIONS, report  # a schema that loads nothing fails
    links = re.search(r"API Links:\s+(\d+) covered", run.stdout)
    assert links is not None and int(links.group(1)) >= 4, report
    # Followed links reached an existing document: reads and new versions of uploaded documents succeeded.
    assert "ok" in _audited(target, "document.read"), report


def _request_schema(openapi: dict[str, Any], path: str, method: str, media: str) -> dict[str, Any]:
    schema = openapi["paths"][path][method]["requestBody"]["content"][media]["schema"]
    return {**schema, "components": openapi["components"]}


def _query_schema(openapi: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    return next(p["schema"] for p in openapi["paths"][path]["get"]["parameters"] if p["name"] == name)


def _valid(schema: dict[str, Any], instance: object) -> bool:
    return bool(jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(instance))


JSON_CASES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/erasure", {}),
    ("/v1/erasure", {"subject_id": "subject-a", "tenant": "default"}),
    ("/v1/erasure", {"subject_id": None}),
    ("/v1/erasure", {"subject_id": "nobody-by-this-id"}),
    ("/v1/keys", {"roles": [""]}),
    ("/v1/keys", {"roles": ["reader"], "name": "portal\n"}),
    ("/v1/keys", {"roles": ["reader"], "groups": ["\x1cteam"]}),
    ("/v1/keys", {"roles": ["reader"], "name": "portal b", "groups": ["legal", "matter:A"]}),
    ("/v1/query", {"query": "x", "filters": {"date_from": "0"}}),
    ("/v1/query", {"query": "x", "filters": {"date_from": "2024-05-01"}}),
    ("/v1/chat/completions", {"model": "enclave", "messages": [{"role": "system", "content": "be brief"}]}),
]


@pytest.mark.parametrize(("path", "body"), JSON_CASES, ids=[f"{p} {b}" for p, b in JSON_CASES])
def test_schema_and_server_agree_on_json_bodies(target: Portal, path: str, body: dict[str, Any]) -> None:
    with target.http() as http:
        schema = _request_schema(http.get("/openapi.json").json(), path, "post", "application/json")
        answer = http.post(path, json=body)
    assert answer.status_code < 500, answer.text
    assert _valid(schema, body) == (answer.status_code < 400), answer.text


@pytest.mark.parametrize(
    "moment", ["2024-05-01t00:00:00z", "2024-05-01T23:59:60Z", "0001-01-01T00:00:00+01:00", "2024-05-01", "0"]
)
def test_schema_and_server_agree_on_audit_times(target: Portal, moment: str) -> None:
    with target.http() as http:
        schema = _query_schema(http.get("/openapi.json").json(), "/v1/audit", "from")
        answer = http.get("/v1/audit", params={"from": moment})
    assert _valid(schema, moment) == (answer.status_code == 200), answer.text


FORM_CASES: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"metadata": None}, {"metadata": "null"}),
    ({"acl": None}, {"acl": "null"}),
    ({"classification": "secret"}, {"classification": "secret"}),
    (
        {"metadata": {"matter": "A"}, "acl": {"groups": ["legal"]}},
        {"metadata": '{"matter": "A"}', "acl": '{"groups": ["legal"]}'},
    ),
]


@pytest.mark.parametrize(("fields", "form"), FORM_CASES, ids=[str(f) for f, _ in FORM_CASES])
def test_schema_and_server_agree_on_upload_fields(target: Portal, fields: dict[str, Any], form: dict[str, str]) -> None:
    """``fields`` as the schema sees them, ``form`` as they travel (JSON parts as JSON text, as the encoding says)."""
    with target.http() as http:
        openapi = http.get("/openapi.json").json()
        schema = _request_schema(openapi, "/v1/documents", "post", "multipart/form-data")
        answer = http.post("/v1/documents", files={"file": ("note.txt", b"A note on the schema.")}, data=form)
    assert _valid(schema, {"file": "note.txt", **fields}) == (answer.status_code == 202), answer.text
    encoding = openapi["paths"]["/v1/documents"]["post"]["requestBody"]["content"]["multipart/form-data"]["encoding"]
    assert encoding == {"acl": {"contentType": "application/json"}, "metadata": {"contentType": "application/json"}}


def test_the_rate_limiter_is_off_on_the_fuzz_target(target: Portal) -> None:
    with httpx.Client(base_url=target.url, headers=target.headers, trust_env=False, timeout=30) as http:
        answers = {http.get("/v1/models").status_code for _ in range(100)}
    assert answers == {200}

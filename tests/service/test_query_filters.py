"""Query-side filters on /v1/search and /v1/query: document type, date range (ingest date or a metadata
date), metadata values — applied inside the index query, so a filtered-out document never appears."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings, served_app

LEASE = "Lease agreement. The tenant pays a monthly rent of 2,000 EUR for the office at Harbour Street 5."
DOCS = {
    "lease-2019.txt": ('{"signed": "2019-05-01", "matter": "A-1"}', LEASE.replace("2,000", "1,500")),
    "lease-2023.txt": ('{"signed": "2023-02-10", "matter": "B-2"}', LEASE),
    "lease-2024.md": ('{"signed": "2024-07-30", "matter": "B-2"}', "# Lease\n\n" + LEASE.replace("2,000", "2,400")),
}
NAMES: dict[str, str] = {}  # document id -> file name


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("filters") / "data", compliance={"redaction_enabled": False})
    with served_app(settings, embedder, parser, generator) as (test_client, _):
        for name, (meta, text) in DOCS.items():
            NAMES[_upload(test_client, name, meta, text)] = name
        for document_id in NAMES:
            _wait_ready(test_client, document_id)
        yield test_client


def _upload(client: TestClient, name: str, metadata: str, text: str) -> str:
    response = client.post(
        "/v1/documents", files={"file": (name, text.encode())}, data={"collection": "leases", "metadata": metadata}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["document_id"])


def _wait_ready(client: TestClient, document_id: str) -> None:
    deadline = time.monotonic() + 120
    while client.get(f"/v1/documents/{document_id}").json()["status"] != "ready":
        assert time.monotonic() < deadline, f"{document_id} was not ingested"
        time.sleep(0.2)


def _found(client: TestClient, filters: dict[str, object] | None) -> set[str]:
    response = client.post("/v1/search", json={"query": "monthly rent for the office", "k": 10, "filters": filters})
    assert response.status_code == 200, response.text
    return {NAMES[r["document_id"]] for r in response.json()["results"]}


def test_without_filters_every_document_is_found(client: TestClient) -> None:
    assert _found(client, None) == set(DOCS)


def test_a_metadata_date_range_keeps_only_documents_signed_inside_it(client: TestClient) -> None:
    within = {"date_field": "signed", "date_from": "2023-01-01", "date_to": "2024-07-30"}
    assert _found(client, within) == {"lease-2023.txt", "lease-2024.md"}
    assert _found(client, {"date_field": "signed", "date_to": "2019-05-01"}) == {"lease-2019.txt"}


def test_the_ingest_date_range_and_document_type_and_metadata_values(client: TestClient) -> None:
    today = datetime.now(UTC).date()
    assert _found(client, {"date_from": str(today - timedelta(days=1))}) == set(DOCS)
    assert _found(client, {"date_to": str(today - timedelta(days=1))}) == set()
    assert _found(client, {"document_types": ["md"]}) == {"lease-2024.md"}
    assert _found(client, {"metadata": {"matter": "B-2"}, "document_types": ["txt"]}) == {"lease-2023.txt"}


def test_a_query_whose_filters_admit_nothing_is_not_found_without_the_model(client: TestClient) -> None:
    body = client.post(
        "/v1/query", json={"query": "What is the monthly rent?", "filters": {"metadata": {"matter": "Z-9"}}}
    ).json()
    assert body["found"] is False and body["citations"] == [] and body["model"] is None
    bad = client.post("/v1/search", json={"query": "rent", "filters": {"date_from": "not a date"}})
    assert bad.status_code == 422 and "date_from" in bad.text

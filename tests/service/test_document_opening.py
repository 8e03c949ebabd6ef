"""What a document's opening states (title, parties, date) over the API: shown in /v1/documents, a filter on
/v1/search and /v1/query, and how document focus finds the contract a question names. Real contracts."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import DATA, make_settings, served_app

CONTRACTS = {
    "cobranding.txt": "DeltathreeInc_19991102",  # PrimeCall and deltathree, effective October 1, 1999
    "manifest.txt": "StampscomInc_20001114",  # iShip.com and Mail Boxes Etc., April 27, 1999
}
LEASE = "Lease agreement. The tenant pays a monthly rent of 2,000 EUR for the office at Harbour Street 5."
NAMES: dict[str, str] = {}  # document id -> file name


def _text(prefix: str) -> str:
    (path,) = [p for p in (DATA / "cuad" / "contracts").iterdir() if p.name.startswith(prefix)]
    return path.read_text(errors="replace")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(
        tmp_path_factory.mktemp("opening") / "data",
        compliance={"redaction_enabled": False},
        retrieval={"document_focus": True},
    )
    with served_app(settings, embedder, parser, generator) as (test_client, _):
        uploads = {name: _text(prefix) for name, prefix in CONTRACTS.items()} | {"lease.txt": LEASE}
        for name, text in uploads.items():
            response = test_client.post("/v1/documents", files={"file": (name, text.encode())})
            assert response.status_code == 202, response.text
            NAMES[response.json()["document_id"]] = name
        deadline = time.monotonic() + 300
        for document_id in NAMES:
            while test_client.get(f"/v1/documents/{document_id}").json()["status"] != "ready":
                assert time.monotonic() < deadline, f"{document_id} was not ingested"
                time.sleep(0.2)
        yield test_client


def _found(client: TestClient, filters: dict[str, object], query: str = "governing law of this agreement") -> set[str]:
    response = client.post("/v1/search", json={"query": query, "k": 20, "filters": filters})
    assert response.status_code == 200, response.text
    return {NAMES[r["document_id"]] for r in response.json()["results"]}


def test_the_listing_and_the_document_show_what_the_opening_states(client: TestClient) -> None:
    listed = {NAMES[d["id"]]: d["opening"] for d in client.get("/v1/documents").json()["documents"]}
    assert listed["cobranding.txt"] == {
        "title": "Co-Branding And Services Agreement",
        "parties": ["RSL COM PrimeCall, Inc.", "deltathree.com, Inc."],
        "aliases": ["PrimeCall", "DeltaThree"],
        "date": "1999-10-01",
        "date_kind": "effective",
    }
    assert listed["manifest.txt"]["parties"] == ["iShip.com, Inc.", "Mail Boxes Etc. USA, Inc."]
    assert listed["lease.txt"] is None  # it names no parties, title or date
    manifest = next(i for i, n in NAMES.items() if n == "manifest.txt")
    assert client.get(f"/v1/documents/{manifest}").json()["opening"]["date"] == "1999-04-27"


def test_the_listing_filters_by_party(client: TestClient) -> None:
    def listed(party: str) -> set[str]:
        body = client.get("/v1/documents", params={"party": party}).json()
        assert body["total"] == len(body["documents"])
        return {NAMES[d["id"]] for d in body["documents"]}

    assert listed("deltathree.com") == {"cobranding.txt"}
    assert listed("MBE") == {"manifest.txt"}
    assert listed("Harbour Street") == set()  # the lease's text, but not a party of it
    assert client.get("/v1/documents", params={"party": "x"}).status_code == 422


def test_a_party_filter_matches_whole_words_of_a_party_or_its_short_name(client: TestClient) -> None:
    assert _found(client, {"party": "PrimeCall"}) == {"cobranding.txt"}
    assert _found(client, {"party": "mail boxes etc"}) == {"manifest.txt"}
    assert _found(client, {"party": "Prime"}) == set()  # a fragment of a word is not a party
    assert _found(client, {"party": "co-branding"}) == {"cobranding.txt", "manifest.txt"}  # both titles say it


def test_the_date_the_opening_states_is_a_date_field(client: TestClient) -> None:
    after = {"date_field": "document_date", "date_from": "1999-06-01"}
    assert _found(client, after) == {"cobranding.txt"}
    assert _found(client, {"date_field": "document_date", "date_to": "1999-05-31"}) == {"manifest.txt"}


def test_a_question_naming_a_contract_by_its_parties_gets_that_contract_first(client: TestClient) -> None:
    for question, wanted in (
        ("Which state's law governs the Co-Branding Agreement between PrimeCall and deltathree.com?", "cobranding.txt"),
        ("Which state's law governs the agreement between iShip.com, Inc. and Mail Boxes Etc.?", "manifest.txt"),
    ):
        results = client.post("/v1/search", json={"query": question, "k": 5}).json()["results"]
        assert [NAMES[r["document_id"]] for r in results[:3]] == [wanted] * 3, question

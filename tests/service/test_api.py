"""The REST API over real components and the real llama.cpp server (in-process ASGI client)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.state import AppState
from tests.conftest import CUAD, DOCS, REPO, make_settings, served_app

NDA = REPO / "samples" / "mutual-nda-acme-globex.txt"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator
) -> Iterator[tuple[TestClient, AppState]]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("api") / "data")
    with served_app(settings, embedder, parser, generator) as pair:
        yield pair


@pytest.fixture(scope="module")
def client(served: tuple[TestClient, AppState]) -> TestClient:
    return served[0]


def _upload(client: TestClient, path: Path, **form: str) -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/documents", files={"file": (path.name, path.read_bytes())}, data=form)
    assert response.status_code == 202, response.text
    return response.json()


def _wait(client: TestClient, document_id: str, timeout: float = 120) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/documents/{document_id}").json()
        if body["status"] in ("ready", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"document {document_id} still {body['status']}")


def test_upload_returns_202_and_the_document_becomes_ready(client: TestClient) -> None:
    accepted = _upload(
        client, NDA, collection="contracts", acl='{"groups": ["legal"], "users": []}', metadata='{"matter": "A-1"}'
    )
    assert accepted["job_id"] and not accepted["duplicate"]
    doc = _wait(client, accepted["document_id"])
    assert doc["status"] == "ready" and doc["chunk_count"] >= 2 and doc["pages"] == 1
    assert (
        doc["collection"] == "contracts" and doc["acl"]["groups"] == ["legal"] and doc["metadata"] == {"matter": "A-1"}
    )
    assert len(doc["content_hash"]) == 64 and doc["job"]["status"] == "done"
    listed = client.get("/v1/documents").json()["documents"]
    assert accepted["document_id"] in [d["id"] for d in listed]


def test_query_answers_with_a_citation_into_the_right_document(client: TestClient) -> None:
    doc_id = _upload(client, NDA)["document_id"]
    doc = _wait(client, doc_id)
    # the same bytes also sit in another collection (an earlier test): identical chunks tie across both
    query = {"query": "Which state's law governs the non-disclosure agreement?", "collections": [doc["collection"]]}
    body = client.post("/v1/query", json=query).json()
    assert body["found"] is True and body["answer"]
    assert body["citations"] and body["citations"][0]["document_id"] == doc_id
    text = NDA.read_text(encoding="utf-8")
    top = body["citations"][0]
    # the snippet is the part of the cited span that answers (not necessarily its head)
    assert top["snippet"].removeprefix("… ").removesuffix(" …")[:50] in text[top["start"] : top["end"]]


def test_query_streams_tokens_then_the_answer_over_sse(client: TestClient) -> None:
    _wait(client, _upload(client, NDA)["document_id"])
    with client.stream(
        "POST",
        "/v1/query",
        json={"query": "How long does the agreement remain in force after the effective date?", "stream": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [block for block in response.iter_text() for block in [block] if block]
    raw = "".join(events)
    kinds = [line.removeprefix("event: ") for line in raw.splitlines() if line.startswith("event: ")]
    assert kinds.count("token") >= 2 and kinds[-2:] == ["answer", "done"]
    final = json.loads(
        [line for line in raw.split("event: answer\n")[1].splitlines() if line.startswith("data: ")][0][6:]
    )
    assert "citations" in final and "found" in final


def test_unrelated_question_is_not_found_without_calling_the_model(client: TestClient) -> None:
    _wait(client, _upload(client, NDA)["document_id"])
    body = client.post("/v1/query", json={"query": "What is the boiling point of liquid nitrogen in Kelvin?"}).json()
    assert body == {
        "answer": "Not found in your documents.",
        "found": False,
        "citations": [],
        "model": None,
        "dropped_citations": 0,
        "grounding": "not_found",
        "sentences": [],
        "unsupported_removed": 0,
    }


def test_search_ranks_chunks_without_generation(client: TestClient) -> None:
    doc_id = _upload(client, NDA)["document_id"]
    _wait(client, doc_id)
    results = client.post(
        "/v1/search", json={"query": "return or destroy confidential information", "k": 3, "collections": ["default"]}
    ).json()["results"]
    text = NDA.read_text(encoding="utf-8")
    assert all(r["document_id"] == doc_id for r in results)
    assert any("certify its destruction" in text[r["start"] : r["end"]] for r in results[:2])
    assert set(results[0]) >= {"document_id", "title", "page", "start", "end", "snippet", "score"}
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_search_skips_the_evidence_lookup_that_only_answers_read(
    served: tuple[TestClient, AppState], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best dense similarity costs a second nearest-neighbour search; only the answerer's gate reads it."""
    client, state = served
    _wait(client, _upload(client, NDA)["document_id"])
    index, asked = state.components.index, []
    search = index.search

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(kwargs.get("best_dense", True))
        return search(*args, **kwargs)

    monkeypatch.setattr(index, "search", spy)
    response = client.post("/v1/search", json={"query": "return or destroy confidential information", "k": 3})
    assert response.status_code == 200 and response.json()["results"]
    assert asked and not any(asked)
    asked.clear()
    client.post("/v1/query", json={"query": "What is the boiling point of liquid nitrogen in Kelvin?"})
    assert asked == [True]  # the evidence gate refuses on it: see the test above
    asked.clear()
    question = "Under the agreement between Acme Health Systems and Globex Analytics, which law governs?"
    assert client.post("/v1/query", json={"query": question}).status_code == 200
    assert asked[0] is True and len(asked) > 1, "the gate's search, then the named document's best chunks"
    assert not any(asked[1:]), "only the gate reads the best dense similarity"


def test_bad_inputs_get_clear_errors_in_one_envelope(client: TestClient) -> None:
    empty = client.post("/v1/documents", files={"file": ("empty.txt", b"")})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_document"
    bad_acl = client.post("/v1/documents", files={"file": ("a.txt", b"hello")}, data={"acl": "{not json"})
    assert bad_acl.status_code == 400 and bad_acl.json()["error"]["param"] == "acl"
    missing = client.get("/v1/documents/does-not-exist")
    assert missing.status_code == 404 and set(missing.json()["error"]) == {"message", "type", "param", "code"}
    invalid = client.post("/v1/query", json={"query": ""})
    assert invalid.status_code == 422 and invalid.json()["error"]["param"] == "query"
    corrupt = _upload(client, DOCS / "bad" / "invalid.pdf")
    failed = _wait(client, corrupt["document_id"])
    assert failed["status"] == "failed" and "damaged" in failed["error"] and failed["chunk_count"] == 0


def test_unsupported_binary_fails_with_reason(client: TestClient) -> None:
    accepted = _upload(client, Path(__file__), collection="x")  # python source is text: accepted
    assert _wait(client, accepted["document_id"])["status"] == "ready"
    binary = client.post("/v1/documents", files={"file": ("blob.bin", bytes(range(256)) * 40)})
    failed = _wait(client, binary.json()["document_id"])
    assert failed["status"] == "failed" and failed["error_code"] == "unsupported_format"


def test_delete_removes_the_document_from_search(client: TestClient) -> None:
    contract = sorted((CUAD / "contracts").glob("*.txt"))[3]
    doc_id = _upload(client, contract, collection="deleteme")["document_id"]
    _wait(client, doc_id)
    query = {"query": contract.read_text(encoding="utf-8")[200:400], "k": 20, "collections": ["deleteme"]}
    assert client.post("/v1/search", json=query).json()["results"]
    assert client.delete(f"/v1/documents/{doc_id}").status_code == 200
    assert client.post("/v1/search", json=query).json()["results"] == []
    assert client.get(f"/v1/documents/{doc_id}").status_code == 404


def test_health_readiness_and_offline_docs(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and set(ready["components"]) == {"store", "index", "embedder", "generator"}
    docs_page = client.get("/docs").text
    assert "cdn" not in docs_page.lower() and "swagger-ui-bundle.js" in docs_page
    asset = [part.split('"')[0] for part in docs_page.split('src="')[1:] if "swagger-ui-bundle" in part][0]
    assert client.get(asset).status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/v1/query"]
    assert "Ask your documents" in client.get("/").text

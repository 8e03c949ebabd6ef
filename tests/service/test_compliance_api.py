"""The compliance core through the REST API: every document request audited (with the chunks
shown), auditors searching the trail, fail-closed 503s when the trail cannot be written, streamed
answers recorded before the answer event, a dead generator recorded, erasure receipts."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from ingest.config import AnswerSettings
from ingest.runtime import Components
from ingest.store.compliance_models import AuditRecord
from ingest.store.models import Chunk, Document
from service.app import create_app
from service.generation.openai_generator import OpenAICompatibleGenerator
from service.state import build_state
from tests import conftest
from tests.conftest import REPO, make_settings, served_app

NDA = REPO / "samples" / "mutual-nda-acme-globex.txt"
HEADERS: dict[str, str] = getattr(conftest, "DEV_HEADERS", {})  # the dev credential, where auth is on in tests
NOTE = (
    "Discharge summary for patient Maria Gonzalez, MRN 004512378. She was treated for pneumonia with "
    "intravenous antibiotics and discharged home on oral amoxicillin for seven days.\n"
)


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator
) -> Iterator[tuple[TestClient, Components]]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("compliance-api") / "data")
    with served_app(settings, embedder, parser, generator, HEADERS) as (client, state):
        yield client, state.components


@pytest.fixture
def client(site: tuple[TestClient, Components]) -> TestClient:
    return site[0]


def _upload(client: TestClient, name: str, data: bytes, **form: str) -> str:
    response = client.post("/v1/documents", files={"file": (name, data)}, data=form)
    assert response.status_code == 202, response.text
    document_id: str = response.json()["document_id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/documents/{document_id}").json()["status"] not in ("ready", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return document_id


def _trail(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["records"]
    return records


def _sse(raw: str) -> list[tuple[str, Any]]:
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_upload_query_and_search_are_audited_with_the_chunks_shown(site: tuple[TestClient, Components]) -> None:
    client, components = site
    doc = _upload(client, NDA.name, NDA.read_bytes())
    asked = client.post(
        "/v1/query", json={"query": "Which state's law governs the agreement?"}, headers={"X-Request-ID": "req-q-1"}
    )
    assert asked.status_code == 200 and asked.json()["found"]
    searched = client.post("/v1/search", json={"query": "return or destroy confidential information", "k": 3})
    records = {r["action"]: r for r in _trail(client, document=doc)}
    assert {"ingest.requested", "query.answered", "search.performed", "document.read"} <= set(records)
    answered = records["query.answered"]
    with Session(components.engine) as session:
        chunk_ids = set(session.exec(select(Chunk.id).where(Chunk.document_id == doc)).all())
    assert answered["request_id"] == "req-q-1" and answered["outcome"] == "answered"
    # how the answer was made is on the record: quoted (no model consulted) and nothing removed
    assert answered["model"] is None and answered["detail"]["grounding"] == "quoted"
    assert answered["detail"]["unsupported_removed"] == 0
    assert len(answered["chunk_ids"]) == len(asked.json()["citations"]) and set(answered["chunk_ids"]) <= chunk_ids
    assert (
        answered["subject"]
        and answered["roles"]
        and answered["client"] == "testclient"
        and answered["decision"] == "allow"
    )
    assert len(records["search.performed"]["chunk_ids"]) == len(searched.json()["results"])
    assert answered["query"] is None and answered["query_encrypted"] is True  # stored sealed, shown only on request
    revealed = [r for r in _trail(client, document=doc, include_query="true") if r["action"] == "query.answered"]
    assert revealed[-1]["query"] == "Which state's law governs the agreement?"
    assert _trail(client, action="audit.read")  # reading the trail is itself on the trail


def test_auditors_filter_by_actor_document_and_time(client: TestClient) -> None:
    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1)) + "Z"
    doc = _upload(client, "filter.txt", b"A short memo about the quarterly filing schedule for the audit committee.")
    mine = _trail(client, document=doc, **{"from": before})
    assert mine and all(doc in r["document_ids"] for r in mine)
    subject = mine[0]["subject"]
    assert all(r["subject"] == subject for r in _trail(client, actor=subject, document=doc))
    assert _trail(client, actor="nobody-by-this-name") == []
    assert _trail(client, document=doc, to="2000-01-01T00:00:00Z") == []
    bad = client.get("/v1/audit", params={"from": "yesterday"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "from"
    assert client.get("/v1/audit/verify").json()["ok"] is True


def _break_the_trail(components: Components) -> sqlite3.Connection:
    db = sqlite3.connect(Path(components.engine.url.database or ""))
    db.execute("CREATE TRIGGER audit_down BEFORE INSERT ON auditrecord BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    db.commit()
    return db


def test_when_the_trail_cannot_be_written_requests_fail_closed(site: tuple[TestClient, Components]) -> None:
    client, components = site
    doc = _upload(client, NDA.name + ".copy.txt", NDA.read_bytes() + b"\nAnnex B.")
    with Session(components.engine) as session:
        documents_before = len(session.exec(select(Document)).all())
    db = _break_the_trail(components)
    try:
        for method, path, body in (
            ("POST", "/v1/query", {"query": "Which state's law governs the agreement?"}),
            ("POST", "/v1/query", {"query": "Which state's law governs the agreement?", "stream": True}),
            ("POST", "/v1/search", {"query": "governing law"}),
        ):
            response = client.request(method, path, json=body)
            assert response.status_code == 503 and response.json()["error"]["code"] == "audit_unavailable", path
            assert "Delaware" not in response.text and "citations" not in response.text
        upload = client.post("/v1/documents", files={"file": ("new.txt", b"A document that must not be stored.")})
        deleted = client.delete(f"/v1/documents/{doc}")
        assert upload.status_code == 503 and deleted.status_code == 503
    finally:
        db.execute("DROP TRIGGER audit_down")
        db.commit()
        db.close()
    with Session(components.engine) as session:
        assert len(session.exec(select(Document)).all()) == documents_before  # nothing stored, nothing deleted
    assert client.get(f"/v1/documents/{doc}").status_code == 200


def test_a_stream_is_recorded_before_its_answer_event(site: tuple[TestClient, Components]) -> None:
    client, components = site
    _upload(client, NDA.name, NDA.read_bytes())
    seen_at_answer: list[AuditRecord] = []
    body = {"query": "How long does the agreement remain in force?", "stream": True}
    with client.stream("POST", "/v1/query", json=body, headers={"X-Request-ID": "req-stream-1"}) as response:
        assert response.status_code == 200
        raw = ""
        for text in response.iter_text():
            raw += text
            if "event: answer" in raw and not seen_at_answer:
                with Session(components.engine) as session:
                    seen_at_answer = list(
                        session.exec(select(AuditRecord).where(AuditRecord.request_id == "req-stream-1")).all()
                    )
    assert [kind for kind, _ in _sse(raw)][-2:] == ["answer", "done"]
    assert [r.action for r in seen_at_answer] == ["query.started", "query.answered"]


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_dead_generator_is_recorded_as_such(site: tuple[TestClient, Components]) -> None:
    client, components = site
    _upload(client, NDA.name, NDA.read_bytes())
    dead = OpenAICompatibleGenerator(f"http://127.0.0.1:{_dead_port()}", model="gone", default_timeout=2)
    settings = components.settings.model_copy(update={"answer": AnswerSettings(mode="generative")})
    state = build_state(settings, components=components, generator=dead, start_worker=False)
    with TestClient(create_app(settings, state), headers=HEADERS) as broken:
        question = {"query": "Which state's law governs the agreement?"}
        plain = broken.post("/v1/query", json=question, headers={"X-Request-ID": "req-dead-1"})
        streamed = broken.post("/v1/query", json=question | {"stream": True}, headers={"X-Request-ID": "req-dead-2"})
    assert plain.status_code == 503 and plain.json()["error"]["code"] == "generator_unavailable"
    assert _sse(streamed.text)[-2][0] == "error"
    outcomes = {r["request_id"]: r["outcome"] for r in _trail(client, action="query.answered")}
    assert outcomes["req-dead-1"] == outcomes["req-dead-2"] == "error:generator_unavailable"


def test_phi_answers_are_scanned_before_any_sentence_is_streamed(client: TestClient) -> None:
    note = _upload(client, "discharge.txt", NOTE.encode(), classification="phi")
    body = {"query": "Which antibiotics was the pneumonia patient discharged on?", "stream": True, "k": 1}
    events = _sse(client.post("/v1/query", json=body).text)
    tokens = [data["text"] for kind, data in events if kind == "token"]
    answer = [data for kind, data in events if kind == "answer"][0]
    assert answer["found"] and answer["citations"][0]["document_id"] == note
    assert tokens and "".join(tokens) == answer["answer"]  # each sentence scanned before it is sent
    assert "Maria Gonzalez" not in json.dumps(events) and "004512378" not in json.dumps(events)


def test_erasure_of_a_data_subject_returns_and_audits_a_receipt(client: TestClient) -> None:
    first = _upload(
        client,
        "a.txt",
        b"Intake form one for the data subject, lease renewal terms.",
        metadata='{"subject_id": "subj-42"}',
    )
    second = _upload(
        client, "b.txt", b"Intake form two for the data subject, parking permit.", metadata='{"subject_id": "subj-42"}'
    )
    other = _upload(
        client, "c.txt", b"Unrelated intake form for another person entirely.", metadata='{"subject_id": "subj-7"}'
    )
    receipt = client.post("/v1/erasure", json={"subject_id": "subj-42"}).json()
    assert receipt["scope"] == "subject" and {d["document_id"] for d in receipt["documents"]} == {first, second}
    assert all(
        d["key_destroyed"] and d["index_points"] >= 1 and len(d["content_sha256"]) == 64 for d in receipt["documents"]
    )
    assert receipt["verification"] == {"index_points_remaining": 0, "originals_remaining": 0}
    audited = _trail(client, action="erasure.subject")[-1]
    assert audited["detail"]["receipt_sha256"] == receipt["receipt_sha256"] and audited["seq"] == receipt["audit_seq"]
    assert (
        client.get(f"/v1/documents/{first}").status_code == 404
        and client.get(f"/v1/documents/{other}").status_code == 200
    )
    one = client.delete(f"/v1/documents/{other}").json()
    assert one["scope"] == "document" and one["documents"][0]["document_id"] == other
    assert client.post("/v1/erasure", json={"subject_id": "x", "tenant": "y"}).status_code == 422


def test_only_auditors_read_the_trail_and_only_admins_erase(site: tuple[TestClient, Components]) -> None:
    from service.auth.api_keys import create_key

    client, components = site
    key = create_key(components.engine, "default", ["reader"], name="rita")
    reader = {"Authorization": f"Bearer {key.key}"}
    assert client.get("/v1/audit", headers=reader).status_code == 403
    assert client.get("/v1/audit/verify", headers=reader).status_code == 403
    assert client.post("/v1/erasure", json={"tenant": "default"}, headers=reader).status_code == 403
    denied = [r for r in _trail(client, actor=f"key:{key.record.id}") if r["outcome"] == "denied"]
    assert {r["action"] for r in denied} == {"audit.read", "erasure"} and all(r["decision"] == "deny" for r in denied)

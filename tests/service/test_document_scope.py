"""``document_ids`` on /v1/query, /v1/search and /v1/chat/completions: a question scoped to named documents.

The scope only narrows what the caller may already see: it runs inside the access filter and the
metadata filters, and a document the caller may not see (another tenant's, hidden by its ACL, erased,
never there) answers 404 exactly as an unknown document does, so the scope tells nothing about which
of them exist.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.auth import api_keys
from service.state import AppState
from tests.conftest import make_settings, served_app

QUESTION = "What monthly rent does the tenant pay for the office at Harbour Street 5?"
# B answers the question best; A is a weaker match; HIDDEN matches well but only the group "secret" may read it.
SCOPED = "Licence agreement. The licensee pays a monthly rent of 1,500 EUR for the storage room at Harbour Street 5."
BEST = "Lease agreement. The tenant pays a monthly rent of 2,000 EUR for the office at Harbour Street 5."
HIDDEN = "Side letter. The tenant pays a monthly rent of 9,999 EUR for the office at Harbour Street 5."
UNKNOWN = "f" * 32


@dataclass
class Site:
    client: TestClient
    state: AppState
    reader: dict[str, str]  # tenant "default", group "legal": not an admin, so ACLs apply
    scoped: str
    best: str
    hidden: str
    foreign: str  # tenant "globex"'s document

    def key(self, tenant: str, roles: list[str], groups: list[str] | None = None) -> dict[str, str]:
        created = api_keys.create_key(self.state.components.engine, tenant, roles, groups=groups or [])
        return {"Authorization": f"Bearer {created.key}"}


def _upload(client: TestClient, name: str, text: str, headers: dict[str, str] | None = None, **form: str) -> str:
    response = client.post("/v1/documents", files={"file": (name, text.encode())}, data=form, headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["document_id"])


def _wait_ready(client: TestClient, document_id: str, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 120
    while client.get(f"/v1/documents/{document_id}", headers=headers).json()["status"] != "ready":
        assert time.monotonic() < deadline, f"{document_id} was not ingested"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    settings = make_settings(
        tmp_path_factory.mktemp("scope") / "data",
        compliance={"redaction_enabled": False},
        answer={"mode": "extractive"},  # quoted answers: what is cited, not what a model writes, is under test
    )
    with served_app(settings, embedder, parser, generator) as (client, state):
        scoped = _upload(client, "licence.txt", SCOPED, metadata='{"matter": "A-1"}')
        best = _upload(client, "lease.txt", BEST, metadata='{"matter": "B-2"}')
        hidden = _upload(client, "side-letter.txt", HIDDEN, acl='{"groups": ["secret"], "users": []}')
        made = Site(client, state, {}, scoped, best, hidden, "")
        globex = made.key("globex", ["reader", "contributor"])
        made.foreign = _upload(client, "lease.txt", BEST, headers=globex)
        for document_id in (scoped, best, hidden):
            _wait_ready(client, document_id)
        _wait_ready(client, made.foreign, globex)
        made.reader = made.key("default", ["reader"], ["legal"])
        yield made


def _search(site: Site, scope: list[str] | None, **extra: Any) -> Any:
    body = {"query": QUESTION, "k": 10, "document_ids": scope, **extra}
    return site.client.post("/v1/search", json=body, headers=site.reader)


def _searched(site: Site, scope: list[str] | None, **extra: Any) -> list[str]:
    response = _search(site, scope, **extra)
    assert response.status_code == 200, response.text
    return [r["document_id"] for r in response.json()["results"]]


def _events(raw: str) -> list[tuple[str, Any]]:
    blocks = [dict(line.split(": ", 1) for line in b.splitlines()) for b in raw.strip().split("\n\n")]
    return [(b["event"], json.loads(b["data"])) for b in blocks]


def _chat(site: Site, scope: list[str] | None, stream: bool = False) -> Any:
    body = {"model": "enclave", "messages": [{"role": "user", "content": QUESTION}], "stream": stream}
    return site.client.post("/v1/chat/completions", json=body | {"document_ids": scope}, headers=site.reader)


def _chat_stream_citations(raw: str) -> list[dict[str, Any]]:
    chunks = [json.loads(line.removeprefix("data: ")) for line in raw.splitlines() if line.startswith("data: {")]
    final = [c for c in chunks if "citations" in c]
    assert len(final) == 1, raw
    citations: list[dict[str, Any]] = final[0]["citations"]
    return citations


def _cited(citations: list[dict[str, Any]]) -> set[str]:
    assert citations, "the scoped document answers the question: its chunks must be cited"
    return {c["document_id"] for c in citations}


def test_a_scope_keeps_a_better_matching_document_out_of_the_search(site: Site) -> None:
    unscoped = _searched(site, None)
    assert unscoped[0] == site.best and site.scoped in unscoped and site.hidden not in unscoped
    assert set(_searched(site, [site.scoped])) == {site.scoped}
    assert set(_searched(site, [site.scoped, site.best])) == {site.scoped, site.best}


def test_query_stream_and_chat_answer_from_the_scoped_document_only(site: Site) -> None:
    plain = site.client.post("/v1/query", json={"query": QUESTION, "document_ids": [site.scoped]}, headers=site.reader)
    assert plain.status_code == 200, plain.text
    assert _cited(plain.json()["citations"]) == {site.scoped} and "2,000" not in plain.json()["answer"]

    streamed = site.client.post(
        "/v1/query", json={"query": QUESTION, "document_ids": [site.scoped], "stream": True}, headers=site.reader
    )
    answer = dict(_events(streamed.text))["answer"]
    assert _cited(answer["citations"]) == {site.scoped} and "2,000" not in answer["answer"]

    chat = _chat(site, [site.scoped])
    assert chat.status_code == 200, chat.text
    assert _cited(chat.json()["citations"]) == {site.scoped}
    assert "2,000" not in chat.json()["choices"][0]["message"]["content"]
    chat_stream = _chat(site, [site.scoped], stream=True)
    assert chat_stream.status_code == 200 and _cited(_chat_stream_citations(chat_stream.text)) == {site.scoped}

    unscoped = site.client.post("/v1/query", json={"query": QUESTION}, headers=site.reader).json()
    assert site.best in _cited(unscoped["citations"])  # without the scope the better match is there


def _without(body: dict[str, Any], document_id: str) -> dict[str, Any]:
    error = body["error"]
    return {**error, "message": error["message"].replace(document_id, "<id>")}


def _refusals(site: Site, scope: list[str]) -> list[Any]:
    """The same scope on every surface: search, query, streamed query, chat, streamed chat."""
    question = {"query": QUESTION, "document_ids": scope}
    return [
        _search(site, scope),
        site.client.post("/v1/query", json=question, headers=site.reader),
        site.client.post("/v1/query", json=question | {"stream": True}, headers=site.reader),
        _chat(site, scope),
        _chat(site, scope, stream=True),
    ]


@pytest.mark.parametrize("which", ["foreign", "hidden"])
def test_a_document_the_caller_may_not_see_answers_like_an_unknown_one(site: Site, which: str) -> None:
    invisible = getattr(site, which)
    unknown = site.client.get(f"/v1/documents/{UNKNOWN}", headers=site.reader)
    assert unknown.status_code == 404
    expected = _without(unknown.json(), UNKNOWN)
    assert site.client.get(f"/v1/documents/{invisible}", headers=site.reader).status_code == 404
    for scope, named in (([invisible], invisible), ([site.scoped, invisible], invisible), ([UNKNOWN], UNKNOWN)):
        for response in _refusals(site, scope):
            assert response.status_code == 404, response.text
            assert response.headers["content-type"].startswith("application/json")
            assert _without(response.json(), named) == expected
    # not a blanket refusal: a caller who may see the hidden document (the tenant's admin) gets it
    if which == "hidden":
        admin = site.client.post("/v1/search", json={"query": QUESTION, "document_ids": [invisible]})
        assert admin.status_code == 200 and {r["document_id"] for r in admin.json()["results"]} == {invisible}


def test_a_scope_and_a_metadata_filter_intersect(site: Site) -> None:
    other_matter = {"metadata": {"matter": "B-2"}}
    assert _searched(site, [site.scoped], filters=other_matter) == []
    assert set(_searched(site, [site.scoped, site.best], filters=other_matter)) == {site.best}
    answered = site.client.post(
        "/v1/query",
        json={"query": QUESTION, "document_ids": [site.scoped], "filters": other_matter},
        headers=site.reader,
    ).json()
    assert answered["found"] is False and answered["citations"] == []
    assert set(_searched(site, [site.scoped], filters={"metadata": {"matter": "A-1"}})) == {site.scoped}


@pytest.mark.parametrize(
    ("scope", "says"),
    [
        ([], "document_ids: Value error, must name at least one document id"),
        (["../etc/passwd"], "document_ids.0"),
        ([UNKNOWN.upper()], "document_ids.0"),
        ([UNKNOWN] * 101, "at most 100"),
    ],
)
def test_a_malformed_scope_is_refused_with_what_to_send(site: Site, scope: list[str], says: str) -> None:
    for response in (_search(site, scope), _chat(site, scope)):
        assert response.status_code == 422, response.text
        assert says in response.json()["error"]["message"]
    empty = site.client.post("/v1/query", json={"query": QUESTION, "document_ids": scope}, headers=site.reader)
    assert empty.status_code == 422 and empty.json()["error"]["param"].startswith("document_ids")


def _trail(site: Site, action: str) -> list[dict[str, Any]]:
    response = site.client.get("/v1/audit", params={"action": action, "limit": 1000})
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["records"]
    return records


def test_the_audit_record_names_the_scope(site: Site) -> None:
    marker = [site.scoped, site.best]
    assert _search(site, marker).status_code == 200
    site.client.post("/v1/query", json={"query": QUESTION, "document_ids": marker}, headers=site.reader)
    site.client.post("/v1/query", json={"query": QUESTION, "document_ids": marker, "stream": True}, headers=site.reader)
    for action, outcomes in (("search.performed", {"ok"}), ("query.answered", {"answered", "not_found"})):
        scoped = [r for r in _trail(site, action) if r["detail"].get("scope") == marker]
        assert scoped and all(r["outcome"] in outcomes for r in scoped), action
    assert any(r["detail"].get("scope") == marker for r in _trail(site, "query.started"))
    assert _search(site, None).status_code == 200
    assert "scope" not in _trail(site, "search.performed")[-1]["detail"]  # an unscoped search names none

    assert _search(site, [site.foreign]).status_code == 404
    refused = [r for r in _trail(site, "search.performed") if r["outcome"].startswith("error:")]
    assert refused and refused[-1]["document_ids"] == [site.foreign] and refused[-1]["detail"]["status"] == 404

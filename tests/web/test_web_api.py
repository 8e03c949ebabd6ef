"""The routes the web page relies on, in process over real components: a citation's passage (exactly
the cited span, hidden and audited like search), /v1/me's views, /web/config, and the page's headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.config import OidcSettings
from service.auth import api_keys
from service.state import AppState
from service.web.headers import page_csp
from service.web.signin import WebSignIn
from tests.conftest import REPO, make_settings, served_app

NDA = REPO / "samples" / "mutual-nda-acme-globex.txt"
NOBODY = {"Authorization": "Bearer enc_not-a-key"}  # replaces the client's default dev key


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator
) -> Iterator[tuple[TestClient, AppState]]:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path_factory.mktemp("web-api") / "data")
    with served_app(settings, embedder, parser, generator) as served:
        yield served


def _key(state: AppState, roles: list[str], groups: list[str] = []) -> dict[str, str]:  # noqa: B006 - never mutated
    created = api_keys.create_key(state.components.engine, "default", roles, groups=groups)
    return {"Authorization": f"Bearer {created.key}"}


def _ready(client: TestClient, text: bytes, name: str, **form: str) -> str:
    accepted = client.post("/v1/documents", files={"file": (name, text)}, data=form)
    assert accepted.status_code == 202, accepted.text
    doc_id = str(accepted.json()["document_id"])
    deadline = time.monotonic() + 120
    while client.get(f"/v1/documents/{doc_id}").json()["status"] != "ready":
        assert time.monotonic() < deadline, "ingestion did not finish"
        time.sleep(0.1)
    return doc_id


def _search(client: TestClient, query: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = client.post("/v1/search", json={"query": query, "k": 5}, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def test_every_passage_marks_exactly_the_cited_span_at_its_document_offsets(site: tuple[TestClient, AppState]) -> None:
    client, _ = site
    doc_id = _ready(client, NDA.read_bytes(), NDA.name)
    text = NDA.read_text(encoding="utf-8")
    results = [r for r in _search(client, "governing law and termination") if r["document_id"] == doc_id]
    assert len(results) >= 2
    for cited in results:
        p = client.get(f"/v1/documents/{doc_id}/passage", params={"start": cited["start"], "end": cited["end"]}).json()
        assert p["text"][p["highlight_start"] : p["highlight_end"]] == text[cited["start"] : cited["end"]]
        assert p["highlight_start"] == cited["start"] - p["offset"] and p["title"] == cited["title"]
        assert all(
            c == text[p["offset"] + i] or (c == " " and text[p["offset"] + i].isspace())
            for i, c in enumerate(p["text"])
        )
        assert len(p["chunk_ids"]) >= 2  # the cited chunk and at least one neighbour for context


def test_a_span_that_is_no_citation_is_not_found(site: tuple[TestClient, AppState]) -> None:
    client, _ = site
    doc_id = _ready(client, NDA.read_bytes(), NDA.name)
    cited = next(r for r in _search(client, "confidential information") if r["document_id"] == doc_id)
    response = client.get(f"/v1/documents/{doc_id}/passage", params={"start": cited["start"] + 1, "end": cited["end"]})
    assert response.status_code == 404 and "ask again" in response.json()["error"]["message"]


def test_a_passage_is_hidden_and_audited_exactly_like_search(site: tuple[TestClient, AppState]) -> None:
    client, state = site
    body = b"Restricted memo. The merger codename is Bluefin and closes in March under Delaware law."
    doc_id = _ready(client, body, "legal-memo.txt", acl='{"groups": ["legal"], "users": []}')
    cited = next(r for r in _search(client, "merger codename Bluefin") if r["document_id"] == doc_id)
    span = {"start": cited["start"], "end": cited["end"]}
    outsider, insider = _key(state, ["reader"], ["hr"]), _key(state, ["reader"], ["legal"])
    assert not [r for r in _search(client, "merger codename Bluefin", outsider) if r["document_id"] == doc_id]
    hidden = client.get(f"/v1/documents/{doc_id}/passage", params=span, headers=outsider)
    assert hidden.status_code == 404 and "Bluefin" not in hidden.text
    shown = client.get(f"/v1/documents/{doc_id}/passage", params=span, headers=insider)
    assert shown.status_code == 200 and "Bluefin" in shown.json()["text"]
    assert client.get(f"/v1/documents/{doc_id}/passage", params=span, headers=NOBODY).status_code == 401
    trail = client.get("/v1/audit", params={"action": "passage.read", "document": doc_id}).json()["records"]
    assert [r["outcome"] for r in trail[-2:]] == ["error:not_found", "ok"]
    assert trail[-1]["chunk_ids"] == shown.json()["chunk_ids"] and trail[-1]["detail"] == span


def test_me_names_the_views_the_policy_allows(site: tuple[TestClient, AppState]) -> None:
    client, state = site
    expected = {
        "reader": {"ask": True, "documents": True, "upload": False, "audit": False},
        "auditor": {"ask": False, "documents": False, "upload": False, "audit": True},
        "contributor": {"ask": False, "documents": False, "upload": True, "audit": False},  # lists nothing
    }
    for role, views in expected.items():
        me = client.get("/v1/me", headers=_key(state, [role])).json()
        assert me["roles"] == [role] and me["views"] == views, (role, me)
    assert client.get("/v1/me").json()["views"] == dict.fromkeys(expected["reader"], True)
    assert client.get("/v1/me", headers=NOBODY).status_code == 401


def test_page_and_docs_carry_a_policy_without_other_origins(site: tuple[TestClient, AppState]) -> None:
    client, _ = site
    assert client.get("/web/config", headers=NOBODY).json() == {"mode": "dev", "oidc": None}
    page = client.get("/", headers=NOBODY)
    assert "script-src 'self';" in page.headers["content-security-policy"] and page.headers["x-frame-options"] == "DENY"
    docs = client.get("/docs", headers=NOBODY)
    assert docs.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert "http" not in docs.headers["content-security-policy"]
    assert client.get("/static-offline-docs/swagger-ui-bundle.js", headers=NOBODY).status_code == 200
    assert "content-security-policy" not in client.get("/healthz").headers  # the API's JSON is left as it is


def test_a_configured_web_client_opens_only_its_token_endpoint() -> None:
    oidc = OidcSettings(
        issuer="https://idp.example",
        audience="enclave",
        jwks_url="https://idp.example/jwks",
        web_client_id="enclave-web",
        authorization_endpoint="https://login.example/authorize",
        token_endpoint="https://tokens.example/token",
    )
    signin = WebSignIn(oidc)
    client = signin.client()
    assert client is not None and client.as_dict()["token_endpoint"] == "https://tokens.example/token"
    assert "connect-src 'self' https://tokens.example;" in page_csp(signin)
    without = WebSignIn(oidc.model_copy(update={"web_client_id": None}))
    assert without.client() is None and "connect-src 'self';" in page_csp(without)

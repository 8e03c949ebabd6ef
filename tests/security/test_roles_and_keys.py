"""Roles are enforced on every route; API keys work until revoked or expired; ACLs, classifications and
ethical walls hold in listings, reads, counts and search; denials are audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from ingest.store.db import session_scope
from ingest.store.models import ApiKey, utcnow
from service.auth import api_keys
from tests.security.conftest import DEV_HEADERS, Site, bearer, claims

ADMIN_ROUTES = [
    ("POST", "/v1/keys", {"roles": ["reader"]}),
    ("GET", "/v1/keys", None),
    ("DELETE", "/v1/keys/abc", None),
    ("GET", "/v1/policy", None),
    ("POST", "/v1/policy/reload", None),
    ("POST", "/v1/erasure", {"subject_id": "patient-1"}),
]


def _call(site: Site, method: str, path: str, body: object, headers: dict[str, str]) -> int:
    return site.client.request(method, path, headers=headers, json=body).status_code


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_reader_cannot_call_admin_routes(site: Site, method: str, path: str, body: object) -> None:
    reader = site.key("acme", "reader", "legal")
    response = site.client.request(method, path, headers=reader, json=body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert "admin" in response.json()["error"]["message"]


def test_each_role_reaches_only_its_routes(site: Site) -> None:
    reader, contributor = site.key("acme", "reader"), site.key("acme", "contributor")
    auditor, token = site.key("acme", "auditor"), bearer(site.signing.sign(claims(roles=["reader"])))
    upload = {"files": {"file": ("r.txt", b"role check")}}
    assert site.client.post("/v1/documents", headers=reader, **upload).status_code == 403  # type: ignore[arg-type]
    assert site.client.post("/v1/documents", headers=contributor, **upload).status_code == 202  # type: ignore[arg-type]
    assert _call(site, "POST", "/v1/search", {"query": "role"}, contributor) == 403
    assert _call(site, "POST", "/v1/search", {"query": "role"}, auditor) == 403  # no document content for auditors
    assert _call(site, "GET", "/v1/audit", None, auditor) == 200
    assert _call(site, "GET", "/v1/audit", None, reader) == 403
    assert _call(site, "POST", "/v1/search", {"query": "role"}, token) == 200
    assert _call(site, "POST", "/v1/search", {"query": "role"}, bearer(site.signing.sign(claims(roles=[])))) == 403


def test_denials_are_in_the_audit_trail(site: Site) -> None:
    reader = site.key("acme", "reader")
    assert _call(site, "GET", "/v1/keys", None, reader) == 403
    records = site.client.get("/v1/audit", headers=site.key("acme", "auditor"), params={"action": "manage_keys"}).json()
    denied = [r for r in records["records"] if r["outcome"] == "denied"]
    assert denied and denied[-1]["decision"] == "deny" and "admin" in denied[-1]["decision_reason"]


def test_keys_work_until_revoked_and_are_never_shown_again(site: Site) -> None:
    created = site.client.post(
        "/v1/keys", headers=DEV_HEADERS, json={"name": "portal", "roles": ["reader"], "groups": ["legal"]}
    )
    assert created.status_code == 201
    body = created.json()
    key = bearer(body["key"])
    assert body["key"].startswith("enc_") and body["tenant"] == "default" and body["active"] is True
    assert _call(site, "GET", "/v1/documents", None, key) == 200
    listed = site.client.get("/v1/keys", headers=DEV_HEADERS).text
    assert body["key"] not in listed and api_keys.hash_key(body["key"]) not in listed and body["id"] in listed
    with session_scope(site.state.components.engine) as session:
        stored = session.exec(select(ApiKey).where(ApiKey.id == body["id"])).one()
    assert stored.key_hash == api_keys.hash_key(body["key"]) and body["key"] not in stored.model_dump_json()
    assert site.client.delete(f"/v1/keys/{body['id']}", headers=DEV_HEADERS).json()["active"] is False
    assert _call(site, "GET", "/v1/documents", None, key) == 401


def test_expired_keys_are_refused(site: Site) -> None:
    created = api_keys.create_key(site.state.components.engine, "acme", ["reader"], expires_days=1)
    assert _call(site, "GET", "/v1/documents", None, bearer(created.key)) == 200
    with session_scope(site.state.components.engine) as session:
        record = session.get(ApiKey, created.record.id)
        assert record is not None
        record.expires_at = utcnow() - timedelta(seconds=1)
        session.add(record)
    assert _call(site, "GET", "/v1/documents", None, bearer(created.key)) == 401


def test_bad_key_requests_get_actionable_errors(site: Site) -> None:
    unknown = site.client.post("/v1/keys", headers=DEV_HEADERS, json={"roles": ["superuser"]})
    assert unknown.status_code == 422 and unknown.json()["error"]["param"] == "roles.0", (
        unknown.text
    )  # the schema's enum
    assert "'reader', 'contributor', 'auditor'" in unknown.json()["error"]["message"]
    assert site.client.post("/v1/keys", headers=DEV_HEADERS, json={"roles": []}).status_code == 422
    assert site.client.delete("/v1/keys/not-a-key", headers=DEV_HEADERS).status_code == 404


DOCS = {
    "open": ({}, "internal"),
    "legal": ({"groups": ["legal"]}, "internal"),
    "hr": ({"groups": ["hr"]}, "internal"),
    "bob": ({"users": ["bob"]}, "internal"),
    "phi": ({}, "phi"),
    "matter-a": ({"groups": ["matter:A"]}, "confidential"),
    "matter-b": ({"groups": ["legal", "matter:B"]}, "confidential"),
}


@pytest.fixture(scope="module")
def library(site: Site) -> dict[str, str]:
    """One document per kind of restriction in tenant 'lib', uploaded by its admin."""
    import json

    admin = site.key("lib", "admin")
    ids = {
        name: site.upload(
            admin,
            f"{name}.txt",
            f"Library document {name}: the retention period is seven years.",
            acl=json.dumps(acl),
            classification=cls,
            collection="library",
        )
        for name, (acl, cls) in DOCS.items()
    }
    site.wait_ready(admin, *ids.values())
    return ids


@pytest.mark.parametrize(
    ("groups", "visible"),
    [
        ("", {"open"}),
        ("legal", {"open", "legal", "matter-b"}),
        ("legal,matter:A", {"open", "legal", "matter-a"}),  # ethical wall: matter A never sees matter B
        ("legal,screened:matter:B", {"open", "legal"}),
        ("hr,phi-access", {"open", "hr", "phi"}),
    ],
)
def test_listings_reads_counts_and_search_show_only_what_the_caller_may_see(
    site: Site, library: dict[str, str], groups: str, visible: set[str]
) -> None:
    reader = site.key("lib", "reader", groups)
    expected = {library[name] for name in visible}
    listed = site.client.get("/v1/documents", headers=reader, params={"limit": 2}).json()
    assert listed["total"] == len(expected) and {d["id"] for d in listed["documents"]} <= expected
    everything = site.client.get("/v1/documents", headers=reader, params={"limit": 500}).json()["documents"]
    assert {d["id"] for d in everything} == expected
    for name, doc_id in library.items():
        assert site.client.get(f"/v1/documents/{doc_id}", headers=reader).status_code == (
            200 if name in visible else 404
        )
    found = site.client.post("/v1/search", headers=reader, json={"query": "how long is the retention period?", "k": 20})
    assert {r["document_id"] for r in found.json()["results"]} == expected


def test_the_admin_sees_every_document_of_its_tenant(site: Site, library: dict[str, str]) -> None:
    listed = site.client.get("/v1/documents", headers=site.key("lib", "admin"), params={"collection": "library"}).json()
    assert {d["id"] for d in listed["documents"]} == set(library.values()) and listed["total"] == len(DOCS)


def test_a_contributor_cannot_write_past_its_own_access(site: Site) -> None:
    writer = site.key("lib", "contributor,reader", "legal,matter:A")
    cases = [
        ({"acl": '{"groups": ["hr"]}'}, "acl must name one of your groups"),
        ({"classification": "phi"}, "may not ingest 'phi'"),
        ({"acl": '{"groups": ["legal", "matter:B"]}'}, "ethical wall"),
        ({"metadata": '{"matter": "B"}'}, "ethical wall"),
    ]
    for form, reason in cases:
        response = site.client.post(
            "/v1/documents", headers=writer, files={"file": ("w.txt", b"write check")}, data=form
        )
        assert response.status_code == 403 and reason in response.json()["error"]["message"], (form, response.text)
    unknown = site.client.post(
        "/v1/documents", headers=writer, files={"file": ("w.txt", b"write check")}, data={"classification": "secret"}
    )  # not in the schema's enum: refused before the policy
    assert unknown.status_code == 422 and unknown.json()["error"]["param"] == "classification", unknown.text
    assert (
        site.client.post(
            "/v1/documents",
            headers=writer,
            files={"file": ("w.txt", b"write check")},
            data={"acl": '{"groups": ["legal"]}'},
        ).status_code
        == 202
    )


def test_a_duplicate_upload_reveals_nothing_the_uploader_cannot_see(site: Site, library: dict[str, str]) -> None:
    text = b"Library document hr: the retention period is seven years."
    hr_writer = site.key("lib", "contributor,reader", "hr")
    same = site.client.post(
        "/v1/documents",
        headers=hr_writer,
        files={"file": ("hr.txt", text)},
        data={"acl": '{"groups": ["hr"]}', "collection": "library"},
    ).json()
    assert same["duplicate"] is True and same["document_id"] == library["hr"]
    other = site.client.post(
        "/v1/documents",
        headers=site.key("lib", "contributor,reader", "legal"),
        files={"file": ("hr.txt", text)},
        data={"acl": '{"groups": ["legal"]}', "collection": "library"},
    )
    assert other.json()["duplicate"] is False and other.json()["document_id"] != library["hr"]

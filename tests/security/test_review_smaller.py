"""Smaller findings of the outside review (issue 15, finding 7), each over HTTP against the app."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.security.conftest import Site


@given(depth=st.integers(33, 20_000), shape=st.sampled_from(["[", '{"a":']), field=st.sampled_from(["metadata", "acl"]))
@settings(max_examples=25, deadline=None)
def test_deeply_nested_json_in_form_fields_is_a_clear_400(site: Site, depth: int, shape: str, field: str) -> None:
    nested = shape * depth + "1" + ("]" if shape == "[" else "}") * depth
    response = site.client.post(
        "/v1/documents",
        headers=site.key("nest", "contributor"),
        files={"file": ("n.txt", b"nested")},
        data={field: nested},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", field) and "nests deeper than" in error["message"]


def test_metadata_nested_within_the_limit_is_accepted(site: Site) -> None:
    nested = '{"a":' * 31 + "1" + "}" * 31
    response = site.client.post(
        "/v1/documents",
        headers=site.key("nest", "contributor"),
        files={"file": ("ok.txt", b"nested within the limit")},
        data={"metadata": nested},
    )
    assert response.status_code == 202, response.text


def test_next_links_are_relative_and_never_echo_the_host_header(site: Site) -> None:
    admin = site.key("pages", "admin")
    for n in range(3):
        site.upload(admin, f"p{n}.txt", f"Paging document number {n}.")
    forged = {**admin, "Host": "evil.example"}
    page = site.client.get("/v1/documents", headers=forged, params={"limit": 2, "collection": "default"})
    following = urlsplit(page.json()["next"])
    assert (following.scheme, following.netloc, following.path) == ("", "", "/v1/documents"), page.text
    assert parse_qs(following.query) == {"limit": ["2"], "offset": ["2"], "collection": ["default"]}
    assert "evil" not in page.text


def test_a_contributor_without_the_reader_role_reads_back_only_what_it_uploaded(site: Site) -> None:
    """README "Who may call it": reading documents (titles, ACLs, metadata) is the reader's."""
    uploader, colleague = site.key("listing", "contributor"), site.key("listing", "contributor")
    reader = site.key("listing", "reader")
    mine = site.upload(uploader, "mine.txt", "A memo the uploader follows.", metadata='{"matter": "M-1"}')
    theirs = site.upload(colleague, "theirs.txt", "A colleague's memo about a merger.", title="Project Kestrel")
    listed = site.client.get("/v1/documents", headers=uploader)
    assert listed.status_code == 403 and "reader role" in listed.json()["error"]["message"]
    assert "Kestrel" not in listed.text
    own = site.client.get(f"/v1/documents/{mine}", headers=uploader)
    assert own.status_code == 200 and own.json()["metadata"] == {"matter": "M-1"}  # its receipt, to follow ingestion
    other = site.client.get(f"/v1/documents/{theirs}", headers=uploader)
    assert other.status_code == 403 and "Kestrel" not in other.text
    missing = site.client.get("/v1/documents/0123456789abcdef0123456789abcdef", headers=uploader)
    assert missing.status_code == 403  # the same answer whether the document exists or not
    for doc_id in (mine, theirs):
        assert site.client.get(f"/v1/documents/{doc_id}", headers=reader).status_code == 200
    assert {d["id"] for d in site.client.get("/v1/documents", headers=reader).json()["documents"]} >= {mine, theirs}


def test_the_trail_keeps_the_callers_request_id_and_the_servers_own(site: Site) -> None:
    """A caller chooses X-Request-ID (kept as sent) but never the server's id, so two requests cannot share one."""
    reader, auditor = site.key("rid", "reader"), site.key("rid", "auditor")
    responses = [site.client.get("/v1/documents", headers={**reader, "X-Request-ID": "portal-dup-7"}) for _ in range(2)]
    server_ids = [r.headers["x-enclave-request-id"] for r in responses]
    assert [r.headers["x-request-id"] for r in responses] == ["portal-dup-7"] * 2 and len(set(server_ids)) == 2
    records = site.client.get("/v1/audit", headers=auditor, params={"action": "documents.listed"}).json()["records"]
    mine = [(r["request_id"], r["server_request_id"]) for r in records if r["request_id"] == "portal-dup-7"]
    assert mine == [("portal-dup-7", server_ids[0]), ("portal-dup-7", server_ids[1])]
    unnamed = site.client.get("/v1/documents", headers={**reader, "X-Request-ID": "x" * 65})  # wider than the column
    own = unnamed.headers["x-enclave-request-id"]
    assert unnamed.status_code == 200 and unnamed.headers["x-request-id"] == own  # not the caller's: the server's
    records = site.client.get("/v1/audit", headers=auditor, params={"action": "documents.listed"}).json()["records"]
    assert (records[-1]["request_id"], records[-1]["server_request_id"]) == (own, own)
    assert site.client.get("/v1/audit/verify", headers=auditor).json()["ok"] is True

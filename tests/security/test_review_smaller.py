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
    response = site.client.post("/v1/documents", headers=site.key("nest", "contributor"),
                                files={"file": ("n.txt", b"nested")}, data={field: nested})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_request", field) and "nests deeper than" in error["message"]


def test_metadata_nested_within_the_limit_is_accepted(site: Site) -> None:
    nested = '{"a":' * 31 + "1" + "}" * 31
    response = site.client.post("/v1/documents", headers=site.key("nest", "contributor"),
                                files={"file": ("ok.txt", b"nested within the limit")}, data={"metadata": nested})
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

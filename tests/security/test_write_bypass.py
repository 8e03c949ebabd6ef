"""A new version (``PUT /v1/documents/{id}``) needs write access to the document as it is *and* as it will be:
relabelling (another collection, other metadata) is no way around ``collection_writers`` or an ethical wall."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.security.conftest import DEV_HEADERS, Site

GUARDED = "records"


@pytest.fixture(scope="module")
def guarded(site: Site) -> Iterator[dict[str, str]]:
    """Tenant 'wb': one document in a collection only 'records-team' may write, one of matter B (no ACL)."""
    data_file = site.policies / "access.json"
    saved = data_file.read_text()
    data_file.write_text(json.dumps({**json.loads(saved), "collection_writers": {GUARDED: ["records-team"]}}))
    assert site.client.post("/v1/policy/reload", headers=DEV_HEADERS).json()["last_error"] is None
    admin = site.key("wb", "admin")
    ids = {
        "records": site.upload(admin, "ledger.txt", "The records ledger of 2021.", collection=GUARDED),
        "matter-b": site.upload(
            admin, "brief.txt", "The brief for matter B.", collection="general", metadata=json.dumps({"matter": "B"})
        ),
    }
    site.wait_ready(admin, *ids.values())
    yield ids
    data_file.write_text(saved)
    assert site.client.post("/v1/policy/reload", headers=DEV_HEADERS).json()["last_error"] is None


def _put(site: Site, headers: dict[str, str], doc_id: str, **form: str) -> tuple[int, str]:
    response = site.client.put(
        f"/v1/documents/{doc_id}",
        headers=headers,
        files={"file": ("new.txt", b"Overwritten by someone who may not write here.")},
        data=form,
    )
    return response.status_code, response.text


@pytest.mark.parametrize(
    ("target", "escape", "reason"),
    [
        ("records", {"collection": "general"}, "accepts writes only from the groups records-team"),
        ("matter-b", {"metadata": "{}"}, "ethical wall: you are screened from matter 'B'"),
        ("matter-b", {"metadata": '{"matter": "A"}', "collection": "elsewhere"}, "ethical wall"),
    ],
)
def test_a_contributor_refused_delete_cannot_overwrite_by_relabelling(
    site: Site, guarded: dict[str, str], target: str, escape: dict[str, str], reason: str
) -> None:
    contributor = site.key("wb", "contributor,reader", "legal,matter:A")
    doc_id = guarded[target]
    assert site.client.get(f"/v1/documents/{doc_id}", headers=contributor).status_code == 200  # it may read it
    assert site.client.delete(f"/v1/documents/{doc_id}", headers=contributor).status_code == 403
    assert _put(site, contributor, doc_id)[0] == 403
    status, body = _put(site, contributor, doc_id, **escape)
    assert status == 403 and reason in json.loads(body)["error"]["message"], body
    document = site.client.get(f"/v1/documents/{doc_id}", headers=site.key("wb", "admin")).json()
    assert document["version"] == 1 and document["filename"] != "new.txt"


def test_a_writer_of_the_collection_may_still_put_a_new_version(site: Site, guarded: dict[str, str]) -> None:
    writer = site.key("wb", "contributor,reader", "records-team")
    status, body = _put(site, writer, guarded["records"])
    assert status == 202, body
    assert (
        site.client.put(
            f"/v1/documents/{guarded['matter-b']}",
            headers=writer,
            files={"file": ("x.txt", b"moved out")},
            data={"collection": GUARDED},
        ).status_code
        == 202
    )

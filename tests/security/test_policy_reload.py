"""Policies are data: editing a file changes behaviour without a restart; a broken edit keeps the old policy."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.security.conftest import DEV_HEADERS, Site


@pytest.fixture
def restore(site: Site) -> Iterator[None]:
    saved = {p: p.read_text() for p in site.policies.iterdir() if p.suffix in (".rego", ".json")}
    yield
    for path, text in saved.items():
        path.write_text(text)
    assert site.client.post("/v1/policy/reload", headers=DEV_HEADERS).json()["last_error"] is None


def _can_search(site: Site, headers: dict[str, str]) -> int:
    return site.client.post("/v1/search", headers=headers, json={"query": "policy"}).status_code


def test_a_changed_policy_file_changes_behaviour_and_a_broken_one_keeps_the_last_good(
    site: Site, restore: None
) -> None:
    reader, auditor = site.key("acme", "reader"), site.key("acme", "auditor")
    assert (_can_search(site, reader), _can_search(site, auditor)) == (200, 403)
    before = site.client.get("/v1/policy", headers=DEV_HEADERS).json()

    rego = site.policies / "access.rego"
    rego.write_text(
        rego.read_text() + '\nrole_permits if {\n\tinput.action == "query"\n\t"auditor" in principal.roles\n}\n'
    )
    time.sleep(0.1)  # policy_check_s is 0.05 in this site: the next request sees the change
    assert _can_search(site, auditor) == 200
    changed = site.client.get("/v1/policy", headers=DEV_HEADERS).json()
    assert changed["revision"] != before["revision"] and changed["last_error"] is None

    rego.write_text(rego.read_text() + "\nbroken := {\n")
    reloaded = site.client.post("/v1/policy/reload", headers=DEV_HEADERS).json()
    assert reloaded["revision"] == changed["revision"] and "access.rego:" in reloaded["last_error"]
    assert _can_search(site, auditor) == 200 and _can_search(site, reader) == 200  # the last good policy


def test_policy_data_edits_apply_too(site: Site, restore: None) -> None:
    data_file = site.policies / "access.json"
    reader = site.key("acme", "reader")
    doc = site.upload(
        site.key("acme", "admin"),
        "conf.txt",
        "Confidential pricing schedule for the Umbrella deal.",
        classification="confidential",
    )
    site.wait_ready(reader, doc)
    assert site.client.get(f"/v1/documents/{doc}", headers=reader).status_code == 200
    data = json.loads(data_file.read_text())
    data["role_classifications"]["reader"] = ["public", "internal"]
    data_file.write_text(json.dumps(data))
    assert site.client.post("/v1/policy/reload", headers=DEV_HEADERS).json()["last_error"] is None
    assert site.client.get(f"/v1/documents/{doc}", headers=reader).status_code == 404

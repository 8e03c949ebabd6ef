"""POST /v1/admin/backups backs up the running service while it keeps answering; only site operators may;
archives are listed and verified without restoring; a tampered one is refused; the archive restores.

Real components over HTTP (the ASGI app): Qdrant Edge, SQLite, the packaged embedder. The generator is
an OpenAI-compatible client pointed at a closed loopback port: nothing here generates.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from ingest.backup.archive import backup_key
from ingest.backup.restore import restore
from ingest.config import Settings
from ingest.index.port import AccessFilter
from ingest.runtime import build_components
from ingest.store.models import Document
from service.auth import api_keys
from service.generation.openai_generator import OpenAICompatibleGenerator
from service.state import AppState
from tests.conftest import make_settings, served_app
from tests.security.backup_site import backup_settings

NAME_PATTERN = r"^enclave-\d{8}T\d{6}Z-[0-9a-f]{8}\.enclave-backup$"


def _settings(root: Path, name: str, *, api_dir: bool = True) -> Settings:
    return backup_settings(root, name, backup={"dir": root / "backups"} if api_dir else None)


@pytest.fixture
def served(tmp_path: Path, embedder, parser) -> Iterator[tuple[TestClient, AppState]]:  # type: ignore[no-untyped-def]
    generator = OpenAICompatibleGenerator("http://127.0.0.1:9", "none")
    with served_app(_settings(tmp_path, "data"), embedder, parser, generator) as (client, state):
        for name, text in (
            ("lease.txt", "The lease of the warehouse at Pier 9 ends on 31 March 2031.\n"),
            ("nda.txt", "This agreement is governed by the laws of the State of Delaware.\n"),
        ):
            response = client.post("/v1/documents", files={"file": (name, text.encode())})
            assert response.status_code == 202, response.text
        _wait_ready(client, 2)
        yield client, state


def _wait_ready(client: TestClient, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = client.get("/v1/documents").json()["documents"]
        if sum(d["status"] == "ready" for d in listed) == count:
            return
        time.sleep(0.1)
    raise AssertionError("documents never became ready")


def _key(state: AppState, tenant: str, roles: str) -> dict[str, str]:
    created = api_keys.create_key(state.components.engine, tenant, roles.split(","))
    return {"Authorization": f"Bearer {created.key}"}


def test_a_backup_of_the_running_service_restores_and_searches_keep_answering(  # type: ignore[no-untyped-def]
    served: tuple[TestClient, AppState], tmp_path: Path, embedder, parser
) -> None:
    client, state = served
    answered: list[int] = []
    stop = threading.Event()

    def search_meanwhile() -> None:
        while not stop.is_set():
            answered.append(client.post("/v1/search", json={"query": "warehouse lease Pier 9"}).status_code)

    searching = threading.Thread(target=search_meanwhile)
    searching.start()
    try:
        taken = client.post("/v1/admin/backups")
    finally:
        stop.set()
        searching.join()
    assert taken.status_code == 201, taken.text
    body = taken.json()
    assert body["documents"] == 2 and body["index_points"] >= 2 and body["pause_ms"] >= 0
    name = body["name"]
    assert re.match(NAME_PATTERN, name) and (tmp_path / "backups" / name).stat().st_size == body["bytes"]
    assert answered and set(answered) == {200}  # the service kept answering through the backup

    listed = client.get("/v1/admin/backups").json()["backups"]
    assert [b["name"] for b in listed] == [name]
    verified = client.post(f"/v1/admin/backups/{name}/verify")
    assert verified.status_code == 200 and verified.json()["intact"] is True
    assert verified.json()["documents"] == 2 and verified.json()["database"] == "sqlite"
    actions = [r["action"] for r in client.get("/v1/audit", params={"action": "backup.created"}).json()["records"]]
    assert actions == ["backup.created"]

    target = _settings(tmp_path, "restored")
    report = restore(target, tmp_path / "backups" / name, backup_key(target))
    assert report.documents == 2
    restored = build_components(target, embedder=embedder, parser=parser)
    try:
        with Session(restored.engine) as session:
            assert session.exec(select(func.count()).select_from(Document)).one() == 2
        query = "governed by the laws of Delaware"
        found = restored.index.search(
            restored.embedder.embed_query(query), restored.sparse.embed_query(query), AccessFilter(tenant="default"), 2
        )
        assert found.chunks  # the restored index answers
    finally:
        restored.close()


def test_only_admins_of_an_operator_tenant_may_back_up(served: tuple[TestClient, AppState]) -> None:
    client, state = served
    other_admin, reader = _key(state, "acme", "admin"), _key(state, "default", "reader")
    for headers in (other_admin, reader):
        for method, path in (("POST", "/v1/admin/backups"), ("GET", "/v1/admin/backups")):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 403, response.text
    refused = client.post("/v1/admin/backups", headers=other_admin).json()["error"]["message"]
    assert "site operation" in refused and "site_operator_tenants" in refused
    assert list((state.settings.backup.dir or Path("/nonexistent")).glob("*")) == []  # nothing was written
    denials = client.get("/v1/audit", params={"action": "backup"}).json()["records"]
    assert denials and {r["outcome"] for r in denials} == {"denied"}


def test_tampered_unknown_and_traversing_names_are_refused(served: tuple[TestClient, AppState]) -> None:
    client, state = served
    name = client.post("/v1/admin/backups").json()["name"]
    archive = (state.settings.backup.dir or Path("/nonexistent")) / name
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    archive.write_bytes(bytes(raw))
    tampered = client.post(f"/v1/admin/backups/{name}/verify")
    assert tampered.status_code == 422 and tampered.json()["error"]["code"] == "backup_invalid", tampered.text
    missing = client.post("/v1/admin/backups/enclave-20260101T000000Z-00000000.enclave-backup/verify")
    assert missing.status_code == 404
    for bad in ("..%2F..%2Fenclave.db", "enclave.db", "x.enclave-backup"):
        assert client.post(f"/v1/admin/backups/{bad}/verify").status_code in (404, 422)


def test_without_a_backup_directory_the_route_says_what_to_set(tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    generator = OpenAICompatibleGenerator("http://127.0.0.1:9", "none")
    with served_app(_settings(tmp_path, "data", api_dir=False), embedder, parser, generator) as (client, _):
        refused = client.post("/v1/admin/backups")
        assert refused.status_code == 409 and "ENCLAVE_BACKUP__DIR" in refused.json()["error"]["message"]


def test_a_backup_directory_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ENCLAVE_BACKUP__DIR lies inside"):
        make_settings(tmp_path / "data", backup={"dir": tmp_path / "data" / "backups"})

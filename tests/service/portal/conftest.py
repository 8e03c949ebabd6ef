"""One live Enclave (real components, the session's llama.cpp server) shared by the portal-integration tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from ingest.config import ApiSettings, Settings, WebhookSettings
from ingest.runtime import Components, build_components
from service.app import create_app
from service.auth.api_keys import create_key, new_key
from service.state import AppState, build_state
from tests.conftest import REPO, make_settings
from tests.service.portal.live import LiveServer

NDA = REPO / "samples" / "mutual-nda-acme-globex.txt"


@dataclass
class Portal:
    url: str
    settings: Settings
    state: AppState
    headers: dict[str, str]

    @property
    def components(self) -> Components:
        return self.state.components

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=180, trust_env=False)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def start_portal(data_dir: Path, embedder, parser, generator, **overrides: object) -> tuple[LiveServer, Portal]:  # type: ignore[no-untyped-def]
    """A live server whose portal calls with the dev admin API key (ENCLAVE_DEV_API_KEY)."""
    admin_key = new_key()
    settings = make_settings(data_dir, dev_api_key=SecretStr(admin_key), **overrides)
    components = build_components(settings, embedder=embedder, parser=parser)
    state = build_state(settings, components=components, generator=generator)
    server = LiveServer(create_app(settings, state))
    return server, Portal(server.start(), settings, state, bearer(admin_key))


def reader_key(portal: Portal, subject: str = "portal-b") -> str:
    """A second portal's API key: reader only."""
    return create_key(portal.components.engine, portal.settings.default_tenant, ["reader"], name=subject).key


def stop_portal(server: LiveServer, portal: Portal) -> None:
    server.stop()
    for task in (portal.state.worker, getattr(portal.state, "retention", None)):
        if task is not None:
            task.stop()
    portal.components.close()


@pytest.fixture(scope="package")
def portal(tmp_path_factory: pytest.TempPathFactory, embedder, parser, generator) -> Iterator[Portal]:  # type: ignore[no-untyped-def]
    """Fast webhook retries (0.2 s backoff), receivers on 127.0.0.1 allowed (internal addresses are refused
    unless listed), and a rate limit high enough not to interfere."""
    server, running = start_portal(
        tmp_path_factory.mktemp("portal") / "data",
        embedder,
        parser,
        generator,
        webhooks=WebhookSettings(backoff_base_s=0.2, poll_s=0.1, timeout_s=3, allowed_hosts=["127.0.0.1"]),
        api=ApiSettings(rate_limit_per_s=1000, rate_limit_burst=1000),
    )
    yield running
    stop_portal(server, running)


def wait_ready(http: httpx.Client, document_id: str, timeout: float = 120) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(f"/v1/documents/{document_id}").json()
        if body["status"] in ("ready", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"document {document_id} still {body['status']}")


@pytest.fixture(scope="package")
def nda(portal: Portal) -> str:
    """The sample NDA, ingested into collection ``contracts``; returns its document id."""
    with portal.http() as http:
        accepted = http.post(
            "/v1/documents", files={"file": (NDA.name, NDA.read_bytes())}, data={"collection": "contracts"}
        )
        assert accepted.status_code == 202, accepted.text
        assert wait_ready(http, accepted.json()["document_id"])["status"] == "ready"
        return str(accepted.json()["document_id"])

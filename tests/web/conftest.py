"""A real Enclave (``python -m service serve``) with a fake identity provider, and Debian's Chromium
driven by Playwright. The browser tests skip, saying why, only where /usr/bin/chromium is missing
(``scripts/install.sh --test`` installs it, so CI runs them)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DEV_KEY, REPO
from tests.web.fake_idp import AUDIENCE, CLIENT_ID, FakeIdP

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("ENCLAVE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "web"
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: run `bash scripts/install.sh --test` (apt-installs Debian's chromium)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Enclave:
    """`python -m service serve` on a free port with its own data directory."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.port = root, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "ENCLAVE_DATA_DIR": str(root / "data"),
            "ENCLAVE_DEV_API_KEY": DEV_KEY,
            "ENCLAVE_API__RATE_LIMIT_PER_S": "0",
            "ENCLAVE_GENERATOR__MAX_TOKENS": "64",
            **env,
        }
        self.log = root / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("enclave serve did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    provider = FakeIdP()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def enclave(tmp_path_factory: pytest.TempPathFactory, idp: FakeIdP) -> Iterator[Enclave]:
    oidc = {"ISSUER": idp.url, "AUDIENCE": AUDIENCE, "JWKS_URL": f"{idp.url}/jwks", "WEB_CLIENT_ID": CLIENT_ID}
    root = tmp_path_factory.mktemp("web")
    anchors = {
        "ENCLAVE_AUDIT__ANCHOR_FILE": str(root / "worm" / "anchors.jsonl"),
        "ENCLAVE_AUDIT__ANCHOR_EVERY_RECORDS": "1",
    }
    server = Enclave(root, {f"ENCLAVE_AUTH__OIDC__{k}": v for k, v in oidc.items()} | anchors)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page at 1366×768 that records every request leaving loopback and every console error."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.external: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _request(self, request: Any) -> None:
        url = request.url
        if not url.startswith(("http://127.0.0.1:", "data:", "blob:", "about:")):
            self.external.append(url)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    watched = Watched(context.new_page())
    yield watched
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watched.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()

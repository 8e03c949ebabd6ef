"""`python -m service serve` as a child process on a free loopback port, with the keys a benchmark uses.

Every request carries ``Authorization: Bearer <key>``. The server gets a fresh
``ENCLAVE_DEV_API_KEY``; when the build has API key management (``enclave keys create``), the
benchmarks also mint a non-admin *reader* key in groups ``g1`` so that the ACL filter is on the
measured path, exactly as for a real user.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import REPO, say

READER_GROUPS = ("g1",)
# One server's capacity is measured, so the per-principal rate limit (default 20 req/s, burst 60)
# must not throttle it: kept on (its check stays on the path) but far above what 2 cores serve.
UNTHROTTLED = {"ENCLAVE_API__RATE_LIMIT_PER_S": "100000", "ENCLAVE_API__RATE_LIMIT_BURST": "100000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Keys:
    """The bearer keys of one data directory: the dev (admin) key and, when available, a reader key."""

    dev: str = field(default_factory=lambda: "bench-" + secrets.token_hex(16))
    reader: str | None = None

    @property
    def query_key(self) -> str:
        """The key the measured requests use: the reader's if there is one."""
        return self.reader or self.dev

    @property
    def principal(self) -> str:
        return "reader (groups g1, ACL filter on)" if self.reader else "dev key (admin: no ACL filter)"


def server_env(data_dir: Path, keys: Keys, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "ENCLAVE_DATA_DIR": str(data_dir),
        "ENCLAVE_DEV_API_KEY": keys.dev,
        "HF_HUB_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
        # load runs drive one key far past a portal's fair share: measure the service, not the 429s
        "ENCLAVE_API__RATE_LIMIT_PER_S": "0",
    }
    env.update(extra or {})
    return env


def create_reader_keys(data_dir: Path, n: int, groups: tuple[str, ...] = READER_GROUPS) -> list[str]:
    """``n`` reader keys (one per simulated user) through the key store's own API, before the server starts."""
    from ingest.config import Settings
    from ingest.store.db import create_schema, make_engine
    from service.auth import api_keys

    settings = Settings(data_dir=data_dir)
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    try:
        return [
            api_keys.create_key(engine, "default", ["reader"], name=f"bench-reader-{i}", groups=list(groups)).key
            for i in range(n)
        ]
    finally:
        engine.dispose()


def has_key_management() -> bool:
    """Whether this build's CLI has ``enclave keys``."""
    proc = subprocess.run(
        [sys.executable, "-m", "service", "keys", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    return proc.returncode == 0


def create_reader_key(data_dir: Path, keys: Keys, groups: tuple[str, ...] = READER_GROUPS) -> str | None:
    """Mint a reader key with ``enclave keys create`` (it prints only the key on stdout); None when the
    build has no key management.

    :raises RuntimeError: the CLI exists but failed.
    """
    if not has_key_management():
        return None
    cmd = [
        sys.executable,
        "-m",
        "service",
        "keys",
        "create",
        "--tenant",
        "default",
        "--roles",
        "reader",
        "--groups",
        ",".join(groups),
        "--name",
        "bench-reader",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300, env=server_env(data_dir, keys))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"`enclave keys create` failed ({proc.returncode}): {proc.stderr[-800:]}")
    return lines[-1].strip()


class ServeProcess:
    """`enclave serve` started and stopped like an operator would, logging to ``<data_dir>/../serve.log``."""

    def __init__(self, data_dir: Path, keys: Keys, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.keys = keys
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"serve-{data_dir.name}.log"
        self._env = server_env(data_dir, keys, extra_env)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 300) -> None:
        say(f"  starting `enclave serve` on {self.url} (data {self.data_dir})")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self._env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"enclave serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self._ready():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"enclave serve was not ready within {timeout:.0f}s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            resp = httpx.get(f"{self.url}/readyz", headers=self.headers(self.keys.dev), timeout=2)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.keys.query_key}"}

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

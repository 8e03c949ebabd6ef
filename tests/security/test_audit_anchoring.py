"""The audit chain cannot quietly lose its tail (issue 15, finding 6): a real ``enclave serve`` on 127.0.0.1
anchors the chain's head outside its data directory, and cutting the newest records, deleting every record,
or removing one and re-signing the rest with the keys found in the data directory all fail verification
(``GET``/``POST /v1/audit/verify`` and ``enclave audit verify``) with the missing records named. Production
mode refuses to start with the master key inside the data directory, or without anchors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from ingest.audit.chain import GENESIS, link_mac
from ingest.compliance import build_compliance
from ingest.store.compliance_models import AuditRecord
from ingest.store.db import make_engine, session_scope
from tests.conftest import DEV_HEADERS, REPO, make_settings
from tests.web.conftest import Enclave


class AnchoredServer(Enclave):
    """``enclave serve`` whose anchors go to ``<root>/worm/`` (beside the data directory, never inside it)."""

    def __init__(self, root: Path, every_records: int) -> None:
        self.anchors = root / "worm" / "audit-anchors.jsonl"
        super().__init__(
            root,
            {
                "ENCLAVE_AUDIT__ANCHOR_FILE": str(self.anchors),
                "ENCLAVE_AUDIT__ANCHOR_EVERY_RECORDS": str(every_records),
            },
        )
        self.data = root / "data"

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", headers=DEV_HEADERS, timeout=60, **kwargs)

    def anchored(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.anchors.read_text().splitlines()] if self.anchors.exists() else []

    def wait_anchored(self, timeout: float = 30) -> int:
        """Until the newest anchor covers the newest record; returns that ``seq``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head, lines = _head(self.data), self.anchored()
            if lines and lines[-1]["head_seq"] == head:
                return head
            time.sleep(0.1)
        raise AssertionError(f"the head {_head(self.data)} was not anchored: {self.anchored()[-1:]}")

    def cli(self, *args: str, anchored: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in self.env.items() if anchored or not k.startswith("ENCLAVE_AUDIT__")}
        return subprocess.run(
            [sys.executable, "-m", "service", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
        )


def _db(data: Path) -> sqlite3.Connection:
    return sqlite3.connect(data / "enclave.db", timeout=30)


def _head(data: Path) -> int:
    with _db(data) as db:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM auditrecord").fetchone()[0])


def _delete(data: Path, where: str) -> None:
    """What an attacker with write access to the database does: drop the append-only triggers, delete rows."""
    db = _db(data)
    db.execute("DROP TRIGGER IF EXISTS auditrecord_no_update")
    db.execute("DROP TRIGGER IF EXISTS auditrecord_no_delete")
    db.execute(f"DELETE FROM auditrecord WHERE {where}")
    db.commit()
    db.close()


def _resign(data: Path, removed: int, pad: int) -> None:
    """Remove record ``removed``, renumber and re-sign the rest with the audit key that the data directory's own
    ``keys/master.key`` unwraps, and forge records at the end until the chain has ``pad`` records again."""
    settings = make_settings(data)
    engine = make_engine(settings.resolved_database_url)
    key = build_compliance(settings, engine).keyring.audit_key()
    with session_scope(engine) as session:
        query = select(AuditRecord).where(col(AuditRecord.seq) > removed).order_by(col(AuditRecord.seq))
        rows = [r.model_dump() for r in session.exec(query)]
        before = session.get(AuditRecord, removed - 1)
        prev_hash = before.hash if before else GENESIS
    _delete(data, f"seq >= {removed}")
    while len(rows) < pad - removed + 1:
        rows.append(rows[-1])
    with session_scope(engine) as session:
        for seq, values in enumerate(rows, start=removed):
            record = AuditRecord(**(values | {"seq": seq, "prev_hash": prev_hash, "hash": ""}))
            record.hash = link_mac(key, record)
            session.add(record)
            session.flush()
            prev_hash = record.hash
        session.commit()
    engine.dispose()


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[AnchoredServer]:
    """Anchoring after every record (default), or with ``@pytest.mark.parametrize("server", [N], indirect=True)``."""
    enclave = AnchoredServer(tmp_path, getattr(request, "param", 1))
    enclave.start()
    yield enclave
    enclave.stop()


@pytest.mark.parametrize("server", [1000], indirect=True)  # no anchor during the run: only the shutdown one
def test_a_cut_tail_is_caught_against_the_shutdown_anchor_after_a_restart(server: AnchoredServer) -> None:
    for _ in range(5):
        assert server.call("GET", "/v1/documents").status_code == 200
    assert not server.anchored()
    server.stop()
    head, last = _head(server.data), server.anchored()[-1]
    assert (last["head_seq"], last["reason"]) == (head, "shutdown")  # every record of the run, anchored at stop

    _delete(server.data, f"seq > {head - 3}")
    offline = server.cli("audit", "verify")
    assert offline.returncode == 1 and f"records {head - 2}-{head} are missing" in offline.stderr

    server.start()
    result = server.call("GET", "/v1/audit/verify").json()
    assert result["ok"] is False and result["first_broken_seq"] == head - 2, result
    assert f"records {head - 2}-{head} are missing" in result["problem"] and "truncated" in result["problem"]
    assert result["anchor"]["seq"] == head
    server.stop()
    assert max(a["head_seq"] for a in server.anchored()) == head  # the cut chain was never anchored
    assert "audit.anchor_refused" in server.log.read_text()


def test_a_record_removed_and_the_chain_resigned_with_the_data_dir_key_is_caught(server: AnchoredServer) -> None:
    for _ in range(6):
        assert server.call("GET", "/v1/documents").status_code == 200
    checkpoint = server.call("GET", "/v1/audit/checkpoint").json()
    head = server.wait_anchored()
    assert server.call("POST", "/v1/audit/verify", json={"checkpoints": [checkpoint]}).json()["ok"] is True
    forged = checkpoint | {"head_seq": checkpoint["head_seq"] + 5, "count": checkpoint["count"] + 5}
    refused = server.call("POST", "/v1/audit/verify", json={"checkpoints": [forged]}).json()
    assert refused["ok"] is False and "signature is invalid" in refused["problem"]
    malformed = server.call("POST", "/v1/audit/verify", json={"checkpoints": [{"head_seq": "x"}]})
    assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_request"
    head = server.wait_anchored()  # the verifications above are records too

    removed = 3
    _resign(server.data, removed, pad=head)
    assert _head(server.data) == head
    plain = server.cli("audit", "verify", anchored=False)
    assert plain.returncode == 0, plain.stderr  # without the anchor the forgery passes...
    result = server.call("GET", "/v1/audit/verify").json()  # ...against it, it does not
    assert result["ok"] is False and f"record {head} differs from the anchor" in result["problem"], result
    against = server.call("POST", "/v1/audit/verify", json={"checkpoints": [checkpoint]}).json()
    assert against["ok"] is False and "differs from the checkpoint" in against["problem"], against

    _delete(server.data, "1 = 1")  # and then every record
    emptied = server.call("GET", "/v1/audit/verify").json()
    assert emptied["ok"] is False and emptied["first_broken_seq"] == 1, emptied
    assert f"records 1-{head} are missing" in emptied["problem"]
    assert max(a["head_seq"] for a in server.anchored()) == head


def _serve_refused(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    environ |= {"ENCLAVE_DATA_DIR": str(tmp_path / "data"), "ENCLAVE_MODE": "production", **env}
    return subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", "9"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_with_the_master_key_in_the_data_directory(tmp_path: Path) -> None:
    refused = _serve_refused(tmp_path, ENCLAVE_AUDIT__ANCHOR_FILE=str(tmp_path / "worm" / "a.jsonl"))
    assert refused.returncode == 2 and "ENCLAVE_COMPLIANCE__MASTER_KEY_FILE" in refused.stderr, refused.stderr
    assert not (tmp_path / "data" / "keys" / "master.key").exists()  # refused before a key was made
    unanchored = _serve_refused(tmp_path, ENCLAVE_COMPLIANCE__MASTER_KEY_FILE=str(tmp_path / "keys" / "master.key"))
    assert unanchored.returncode == 2 and "ENCLAVE_AUDIT__ANCHOR_FILE" in unanchored.stderr, unanchored.stderr

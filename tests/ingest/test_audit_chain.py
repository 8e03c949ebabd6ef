"""The audit chain: verification names the first broken record; checkpoints catch truncation;
concurrent writers in several processes keep it linear; a failing store fails the change too."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from ingest.audit.trail import Actor, AuditEvent, AuditUnavailable
from ingest.compliance import Compliance, build_compliance
from ingest.store.db import create_schema, make_engine
from ingest.store.models import Document
from tests.conftest import REPO, make_settings

ACTOR = Actor("t1", "alice", ("reader",), "api_key", "req-1", "10.0.0.7")


def _compliance(data_dir: Path, url: str | None = None) -> Compliance:
    settings = make_settings(data_dir, **({"database_url": url} if url and not url.startswith("sqlite") else {}))
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return build_compliance(settings, engine)


@pytest.fixture
def trail_dir(tmp_path: Path) -> Path:
    compliance = _compliance(tmp_path / "data")
    for i in range(6):
        compliance.audit.record(
            AuditEvent(
                ACTOR,
                "query.answered",
                document_ids=[f"d{i}"],
                chunk_ids=[f"c{i}"],
                query=f"who signed contract {i}?",
                model="smollm2",
            )
        )
    return tmp_path / "data"


def _tamper(data_dir: Path, *statements: str) -> None:
    """What an attacker with the database file can do: drop the append-only triggers and edit rows."""
    db = sqlite3.connect(data_dir / "enclave.db")
    db.execute("DROP TRIGGER IF EXISTS auditrecord_no_update")
    db.execute("DROP TRIGGER IF EXISTS auditrecord_no_delete")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_an_intact_chain_verifies_and_holds_no_clear_query(trail_dir: Path) -> None:
    result = _compliance(trail_dir).audit.verify()
    assert result.ok and result.records == 6 and result.head_seq == 6
    raw = (trail_dir / "enclave.db").read_bytes() + (trail_dir / "enclave.db-wal").read_bytes()
    assert b"who signed contract" not in raw  # the query is stored sealed only


def test_the_store_refuses_updates_and_deletes_of_audit_rows(trail_dir: Path) -> None:
    db = sqlite3.connect(trail_dir / "enclave.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE auditrecord SET outcome = 'x' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM auditrecord WHERE seq = 2")
    db.close()


SWAP_3_AND_4 = (
    "UPDATE auditrecord SET seq = -3 WHERE seq = 3",
    "UPDATE auditrecord SET seq = 3 WHERE seq = 4",
    "UPDATE auditrecord SET seq = 4 WHERE seq = -3",
)
INSERT_AT_3 = (
    "UPDATE auditrecord SET seq = seq + 100 WHERE seq >= 3",
    "UPDATE auditrecord SET seq = seq - 99 WHERE seq >= 103",
    "INSERT INTO auditrecord (seq, time, tenant, subject, roles_json, auth_method, action, outcome, document_ids_json, "
    "chunk_ids_json, detail_json, key_id, prev_hash, hash) SELECT 3, time, tenant, 'mallory', roles_json, auth_method, "
    "'query.answered', 'ok', '[]', '[]', '{}', key_id, hash, printf('%064d', 7) FROM auditrecord WHERE seq = 2",
)


@pytest.mark.parametrize(
    "statements, seq, words",
    [
        (("UPDATE auditrecord SET subject = 'mallory' WHERE seq = 3",), 3, "HMAC"),
        (("DELETE FROM auditrecord WHERE seq = 3",), 3, "missing"),
        (
            ("DELETE FROM auditrecord WHERE seq = 3", "UPDATE auditrecord SET seq = seq - 1 WHERE seq > 3"),
            3,
            "does not link",
        ),
        (SWAP_3_AND_4, 3, "does not link"),
        (INSERT_AT_3, 3, "HMAC"),
    ],
    ids=["altered", "deleted", "deleted-and-renumbered", "reordered", "inserted"],
)
def test_verify_names_the_first_broken_record(
    trail_dir: Path, statements: tuple[str, ...], seq: int, words: str
) -> None:
    _tamper(trail_dir, *statements)
    result = _compliance(trail_dir).audit.verify()
    assert not result.ok and result.first_broken_seq == seq and words in (result.problem or "")


def test_a_checkpoint_detects_truncation_that_the_chain_alone_cannot(trail_dir: Path) -> None:
    audit = _compliance(trail_dir).audit
    checkpoint = audit.checkpoint()
    assert checkpoint["count"] == 6 and audit.verify([checkpoint]).ok
    _tamper(trail_dir, "DELETE FROM auditrecord WHERE seq >= 5")
    assert audit.verify().ok  # a clean cut of the tail still links...
    result = audit.verify([checkpoint])  # ...but not against the signed checkpoint
    assert not result.ok and "truncated" in (result.problem or "") and result.first_broken_seq == 5
    forged = checkpoint | {"count": 4, "head_seq": 4}
    assert "signature" in (audit.verify([forged]).problem or "")


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"ENCLAVE_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "service", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_verify_checkpoint_export_and_master_key_rotation(trail_dir: Path, tmp_path: Path) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    assert _cli(trail_dir, "audit", "checkpoint", "--out", str(checkpoints)).returncode == 0
    ok = _cli(trail_dir, "audit", "verify", "--checkpoint", str(checkpoints))
    assert ok.returncode == 0 and "6 records" in ok.stdout
    export = _cli(trail_dir, "audit", "export", "--since", "2000-01-01T00:00:00Z")
    lines = [json.loads(line) for line in export.stdout.splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3, 4, 5, 6] and all(
        r["query_ciphertext"].startswith("enc1:") for r in lines
    )
    assert "who signed" not in export.stdout
    rotated = _cli(trail_dir, "kms", "rotate")  # the audit key is re-wrapped, not replaced: the chain still verifies
    assert rotated.returncode == 0 and "v1 → v2" in rotated.stdout
    after = _compliance(trail_dir).audit
    assert after.verify().ok and list(after.records())[-1].action == "keys.master_rotated"
    _tamper(trail_dir, "UPDATE auditrecord SET outcome = 'denied' WHERE seq = 4")
    broken = _cli(trail_dir, "audit", "verify")
    assert broken.returncode == 1 and "record 4" in broken.stderr


APPENDER = """
import sys
from ingest.audit.trail import Actor, AuditEvent
from tests.ingest.test_audit_chain import _compliance
from pathlib import Path
compliance = _compliance(Path(sys.argv[1]), sys.argv[4])
for i in range(int(sys.argv[3])):
    compliance.audit.record(AuditEvent(Actor("t1", sys.argv[2]), "search.performed", chunk_ids=[str(i)]))
"""


def test_concurrent_writers_in_several_processes_keep_one_linear_chain(tmp_path: Path, store_url: str) -> None:
    data = tmp_path / "data"
    _compliance(data, store_url)
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(data), f"writer{n}", "25", store_url], cwd=REPO)
        for n in range(4)
    ]
    assert all(p.wait(timeout=180) == 0 for p in procs)
    audit = _compliance(data, store_url).audit
    result = audit.verify()
    assert result.ok and result.records == 100
    records = list(audit.records())
    assert [r.seq for r in records] == list(range(1, 101))
    assert len({r.prev_hash for r in records}) == 100  # no two records claim the same predecessor: no fork
    assert {r.subject for r in records} == {f"writer{n}" for n in range(4)}


def test_if_the_audit_write_fails_the_change_is_rolled_back(tmp_path: Path) -> None:
    compliance = _compliance(tmp_path / "data")
    db = sqlite3.connect(tmp_path / "data" / "enclave.db")
    db.execute("CREATE TRIGGER audit_down BEFORE INSERT ON auditrecord BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    db.commit()
    with pytest.raises(AuditUnavailable, match="fail closed"), compliance.audit.transaction() as tx:
        tx.session.add(Document(tenant="t1", collection="c", title="t", filename="f", content_hash="0" * 64))
        tx.append(AuditEvent(ACTOR, "ingest.requested"))
    with compliance.audit.transaction() as tx:
        assert tx.session.exec(select(Document)).all() == []


def test_records_from_before_the_server_request_id_column_keep_verifying(trail_dir: Path) -> None:
    """The field joined the HMAC later: a record without it is signed exactly as it was before the column existed."""
    audit = _compliance(trail_dir).audit
    record = list(audit.records())[2]
    assert record.server_request_id is None
    before = {k: v for k, v in record.model_dump().items() if k not in ("hash", "prev_hash", "server_request_id")}
    key = _compliance(trail_dir).keyring.audit_key()
    message = json.dumps(before, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"|"
    assert hmac.new(key, message + record.prev_hash.encode(), hashlib.sha256).hexdigest() == record.hash
    audit.record(AuditEvent(Actor("t1", "bob", server_request_id="5e1f" * 8), "document.read"))
    assert audit.verify().ok
    _tamper(trail_dir, "UPDATE auditrecord SET server_request_id = 'other' WHERE seq = 7")
    assert audit.verify().first_broken_seq == 7  # once set, it is signed like every other field

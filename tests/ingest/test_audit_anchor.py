"""Anchors of the audit chain's head outside the data directory: what they catch that the chain alone cannot
(a cut tail, every record deleted, a record removed and the rest re-signed with the data directory's own
keys), that they cannot be forged, and that the anchorer never anchors a tampered chain."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import delete
from sqlmodel import col, select

from ingest.audit.anchor import Anchorer, AnchorLog
from ingest.audit.chain import link_mac
from ingest.audit.trail import Actor, AuditEvent
from ingest.compliance import Compliance, build_compliance
from ingest.config import Settings
from ingest.errors import ConfigurationError
from ingest.placement import check_placement
from ingest.store.compliance_models import AuditRecord
from ingest.store.db import create_schema, make_engine, session_scope
from tests.conftest import make_settings

ACTOR = Actor("t1", "alice", ("reader",), "api_key", "req-1", "10.0.0.7")


def _compliance(data_dir: Path, anchors: Path | None) -> Compliance:
    audit = {"anchor_file": str(anchors)} if anchors else {}
    settings = make_settings(data_dir, audit=audit)
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return build_compliance(settings, engine)


def _record(compliance: Compliance, n: int) -> None:
    for i in range(n):
        compliance.audit.record(AuditEvent(ACTOR, "document.read", document_ids=[f"d{i}"]))


@pytest.fixture
def anchored(tmp_path: Path) -> tuple[Compliance, Anchorer, Path]:
    """Six records, anchored; the anchor file lives beside (not inside) the data directory."""
    anchors = tmp_path / "worm" / "audit-anchors.jsonl"
    compliance = _compliance(tmp_path / "data", anchors)
    assert compliance.audit.anchors is not None
    anchorer = Anchorer(compliance.audit, compliance.audit.anchors, interval_s=3600, every_records=1000)
    _record(compliance, 6)
    assert anchorer.anchor("test") is not None
    return compliance, anchorer, anchors


def _sql(data_dir: Path, *statements: str) -> None:
    """What an attacker with the database file does: drop the append-only triggers and edit rows."""
    db = sqlite3.connect(data_dir / "enclave.db")
    db.execute("DROP TRIGGER IF EXISTS auditrecord_no_update")
    db.execute("DROP TRIGGER IF EXISTS auditrecord_no_delete")
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def _resign_without(data_dir: Path, removed: int) -> None:
    """Remove record ``removed`` and re-sign every later one with the audit key the data directory unwraps."""
    attacker = _compliance(data_dir, None)  # the master key file and the wrapped audit key are both in there
    key = attacker.keyring.audit_key()
    _sql(data_dir, f"DELETE FROM auditrecord WHERE seq = {removed}")
    with session_scope(attacker.audit._engine) as session:  # noqa: SLF001 - the attacker's own connection
        rows = list(
            session.exec(select(AuditRecord).where(col(AuditRecord.seq) > removed).order_by(col(AuditRecord.seq)))
        )
        prev = session.get(AuditRecord, removed - 1)
        prev_hash = prev.hash if prev else "0" * 64
        session.execute(delete(AuditRecord).where(col(AuditRecord.seq) > removed))
        session.flush()
        for row in rows:
            row = AuditRecord(**(row.model_dump() | {"seq": row.seq - 1, "prev_hash": prev_hash, "hash": ""}))
            row.hash = link_mac(key, row)
            prev_hash = row.hash
            session.add(row)
            session.flush()
        session.commit()


def test_the_anchor_key_is_private_and_outside_the_data_directory(anchored: tuple[Compliance, Anchorer, Path]) -> None:
    compliance, _, anchors = anchored
    key_file = anchors.with_name(anchors.name + ".key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    line = json.loads(anchors.read_text().splitlines()[-1])
    assert (line["head_seq"], line["reason"]) == (6, "test")
    result = compliance.audit.verify()
    assert result.ok and result.anchor is not None and result.anchor.seq == 6


def test_deleting_the_newest_records_fails_against_the_anchor(anchored: tuple[Compliance, Anchorer, Path]) -> None:
    compliance, anchorer, _ = anchored
    _sql(compliance.settings.data_dir, "DELETE FROM auditrecord WHERE seq >= 5")
    result = compliance.audit.verify()
    assert not result.ok and result.first_broken_seq == 5
    assert "records 5-6 are missing" in (result.problem or "") and "truncated" in (result.problem or "")
    assert anchorer.anchor("test") is None and "records 5-6" in (anchorer.refused or "")  # never anchors the cut


def test_deleting_every_record_fails_against_the_anchor(anchored: tuple[Compliance, Anchorer, Path]) -> None:
    compliance, _, _ = anchored
    _sql(compliance.settings.data_dir, "DELETE FROM auditrecord")
    result = compliance.audit.verify()
    assert not result.ok and result.records == 0 and "records 1-6 are missing" in (result.problem or "")


def test_a_record_removed_and_the_chain_resigned_with_the_data_dir_key_fails_against_the_anchor(
    anchored: tuple[Compliance, Anchorer, Path],
) -> None:
    compliance, anchorer, _ = anchored
    data_dir = compliance.settings.data_dir
    _resign_without(data_dir, 3)
    assert _compliance(data_dir, None).audit.verify().ok  # the chain alone is perfectly consistent again...
    result = compliance.audit.verify()  # ...but one record short of its anchor
    assert not result.ok and "record 6 is missing" in (result.problem or "")
    _record(_compliance(data_dir, None), 1)  # even padded back to six records, record 6 is not the anchored one
    padded = compliance.audit.verify()
    assert not padded.ok and "record 6 differs from the anchor" in (padded.problem or "")
    assert anchorer.anchor("test") is None and "record 6 differs" in (anchorer.refused or "")


def test_an_anchor_forged_with_keys_from_the_data_directory_is_refused(
    anchored: tuple[Compliance, Anchorer, Path],
) -> None:
    compliance, anchorer, anchors = anchored
    _sql(compliance.settings.data_dir, "DELETE FROM auditrecord WHERE seq >= 4")
    audit_key = compliance.keyring.audit_key()
    forged = AnchorLog(anchors, compliance.settings.master_key_file)  # any key the attacker can read
    forged.key_path = anchors.parent / "attacker.key"
    forged.key_path.write_text(base64.b64encode(audit_key).decode())
    head = compliance.audit.head()
    forged.append(head, "schedule")  # a "newer" anchor of the cut chain, appended to the same file
    result = compliance.audit.verify()
    assert not result.ok and "line 2" in (result.problem or "") and "forged or altered" in (result.problem or "")
    assert anchorer.anchor("test") is None and "forged" in (anchorer.refused or "")


def test_appends_wake_the_anchorer_and_stop_writes_the_shutdown_anchor(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors" / "audit.jsonl"
    compliance = _compliance(tmp_path / "data", anchors)
    assert compliance.audit.anchors is not None
    anchorer = Anchorer(compliance.audit, compliance.audit.anchors, interval_s=3600, every_records=3)
    _record(compliance, 1)

    def anchored(lines: int) -> None:
        deadline = time.monotonic() + 10
        while not anchors.exists() or len(anchors.read_text().splitlines()) < lines:
            assert time.monotonic() < deadline, f"no anchor number {lines}"
            time.sleep(0.02)

    anchorer.start()
    try:
        anchored(1)  # the start anchor
        _record(compliance, 3)
        anchored(2)  # three appends woke it long before its hour-long interval
        _record(compliance, 1)  # below the threshold: anchored only at shutdown
    finally:
        anchorer.stop()
    lines = [json.loads(line) for line in anchors.read_text().splitlines()]
    assert [(a["head_seq"], a["reason"]) for a in lines] == [(1, "start"), (4, "records"), (5, "shutdown")]


def test_a_missing_anchor_key_is_reported_not_recreated(anchored: tuple[Compliance, Anchorer, Path]) -> None:
    compliance, anchorer, anchors = anchored
    anchors.with_name(anchors.name + ".key").unlink()
    result = compliance.audit.verify()
    assert not result.ok and "missing" in (result.problem or "") and "restore the key" in (result.problem or "")
    assert anchorer.anchor("test") is None and not anchors.with_name(anchors.name + ".key").exists()


def test_anchors_inside_the_data_directory_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="ANCHOR_FILE lies inside ENCLAVE_DATA_DIR"):
        Settings(data_dir=tmp_path, audit={"anchor_file": str(tmp_path / "anchors.jsonl")})
    with pytest.raises(ValidationError, match="ANCHOR_KEY_FILE lies inside"):
        Settings(
            data_dir=tmp_path / "data",
            audit={"anchor_file": str(tmp_path / "a.jsonl"), "anchor_key_file": str(tmp_path / "data" / "k")},
        )


def test_production_refuses_the_master_key_in_the_data_directory_and_serving_without_anchors(tmp_path: Path) -> None:
    inside = Settings(data_dir=tmp_path / "data", mode="production")
    with pytest.raises(ConfigurationError, match="ENCLAVE_COMPLIANCE__MASTER_KEY_FILE"):
        check_placement(inside)
    keyed = Settings(
        data_dir=tmp_path / "data",
        mode="production",
        compliance={"master_key_file": str(tmp_path / "keys" / "master.key")},
    )
    check_placement(keyed)  # a worker or the CLI
    with pytest.raises(ConfigurationError, match="ENCLAVE_AUDIT__ANCHOR_FILE"):
        check_placement(keyed, serving=True)
    check_placement(
        keyed.model_copy(
            update={"audit": keyed.audit.model_copy(update={"anchor_file": tmp_path / "worm" / "a.jsonl"})}
        ),
        serving=True,
    )
    check_placement(Settings(data_dir=tmp_path / "dev"), serving=True)  # dev mode keeps everything in one place

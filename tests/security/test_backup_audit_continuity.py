"""Audit continuity across backup and restore, with the chain anchored outside the data directory.

A backup older than the newest anchor would silently drop the audit records written after it: the
restore refuses it (nothing moved into place) unless the operator accepts the gap, and then the
restore record names the lost range and a signed rebase anchor lets the chain verify and grow again.
A backup that reaches the anchor restores without a question, and a forged anchor file stops a restore.
Real components: Qdrant Edge, SQLite, the packaged embedder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import documents as docs
from ingest.audit.anchor import Anchorer
from ingest.audit.trail import Actor, AuditEvent, AuditTrail
from ingest.backup.archive import backup_key
from ingest.backup.restore import restore
from ingest.backup.snapshot import BackupRefused, take_backup
from ingest.config import Settings
from ingest.runtime import Components, build_components
from ingest.worker import drain
from tests.security.backup_site import backup_settings

TEXT = "The lease of the warehouse at Pier 9 ends on 31 March 2031 unless renewed in writing.\n"


def _settings(root: Path, name: str) -> Settings:
    return backup_settings(root, name, audit={"anchor_file": root / "worm" / "anchors.jsonl"})


@pytest.fixture
def site(tmp_path: Path, embedder, parser) -> Iterator[Components]:  # type: ignore[no-untyped-def]
    components = build_components(_settings(tmp_path, "data"), embedder=embedder, parser=parser)
    upload = docs.Upload(filename="lease.txt", data=TEXT.encode(), tenant="default", collection="default")
    docs.submit(components, upload)
    drain(components)
    try:
        yield components
    finally:
        components.close()


def _trail(components: Components) -> AuditTrail:
    return components.compliance.audit


def _anchor(trail: AuditTrail) -> None:
    assert trail.anchors is not None
    Anchorer(trail, trail.anchors, 60.0, 1000).anchor("test")


def _activity(trail: AuditTrail, count: int) -> None:
    for n in range(count):
        trail.record(AuditEvent(Actor.system("default", "clerk"), "query", detail={"n": n}))


def _backup(site: Components, archive: Path) -> None:
    take_backup(site.settings, archive, backup_key(site.settings), index=site.index)  # as the admin route does


def _anchor_lines(settings: Settings) -> list[dict[str, object]]:
    assert settings.audit.anchor_file is not None
    return [json.loads(line) for line in settings.audit.anchor_file.read_text().splitlines()]


def test_an_older_backup_is_refused_then_restored_with_the_gap_recorded_and_rebased(  # type: ignore[no-untyped-def]
    site: Components, tmp_path: Path, embedder, parser
) -> None:
    trail = _trail(site)
    _anchor(trail)
    archive = tmp_path / "old.enclave-backup"
    _backup(site, archive)
    in_backup = trail.head().seq
    _activity(trail, 5)  # who read what after the backup: the records an old restore would lose
    _anchor(trail)
    anchored = trail.head()
    assert anchored.seq == in_backup + 5

    target = _settings(tmp_path, "restored")
    with pytest.raises(BackupRefused, match=f"gives up audit records {in_backup + 1}-{anchored.seq}"):
        restore(target, archive, backup_key(target))
    assert [p for p in target.data_dir.rglob("*") if p.is_file()] == []  # nothing was moved into place

    report = restore(target, archive, backup_key(target), accept_audit_gap=True)
    assert report.audit_gap is not None and report.audit_problem is None
    assert (report.audit_gap["restored_head_seq"], report.audit_gap["anchored_seq"]) == (in_backup, anchored.seq)
    rebase = _anchor_lines(target)[-1]
    assert rebase["reason"] == "restore" and rebase["head_seq"] == report.audit_seq
    given_up = rebase["rebased_from"]
    assert isinstance(given_up, dict) and (given_up["seq"], given_up["hash"]) == (anchored.seq, anchored.hash)

    restored = build_components(target, embedder=embedder, parser=parser)
    try:
        again = _trail(restored)
        record = next(r for r in again.records() if r.seq == report.audit_seq)
        assert record.action == "backup.restored" and f'"anchored_seq":{anchored.seq}' in record.detail_json.replace(
            " ", ""
        )
        assert again.verify().ok, again.verify().problem  # the rebase anchor vouches for the restored chain
        _activity(again, 8)  # the chain grows past the given-up anchor's seq, on its new history
        _anchor(again)
        assert _anchor_lines(target)[-1]["head_seq"] == again.head().seq  # the anchorer extends the rebase
        verified = again.verify()
        assert verified.ok and verified.anchor is not None and verified.anchor.seq == again.head().seq
    finally:
        restored.close()


def test_a_backup_that_reaches_the_anchor_restores_and_is_anchored(  # type: ignore[no-untyped-def]
    site: Components, tmp_path: Path, embedder, parser
) -> None:
    trail = _trail(site)
    _activity(trail, 2)
    _anchor(trail)
    _activity(trail, 2)  # newer than the anchor, not yet anchored: in the backup
    archive = tmp_path / "new.enclave-backup"
    _backup(site, archive)

    target = _settings(tmp_path, "restored")
    report = restore(target, archive, backup_key(target))
    assert report.audit_gap is None and report.audit_problem is None
    line = _anchor_lines(target)[-1]
    assert line["reason"] == "restore" and "rebased_from" not in line and line["head_seq"] == report.audit_seq
    restored = build_components(target, embedder=embedder, parser=parser)
    try:
        assert _trail(restored).verify().ok
    finally:
        restored.close()


def test_an_old_backup_restored_around_the_check_fails_verification(  # type: ignore[no-untyped-def]
    site: Components, tmp_path: Path, embedder, parser
) -> None:
    """Restoring with anchoring switched off skips the check, but the anchors still catch the lost records."""
    trail = _trail(site)
    _anchor(trail)
    archive = tmp_path / "old.enclave-backup"
    _backup(site, archive)
    _activity(trail, 3)
    _anchor(trail)
    lost_to = trail.head().seq

    anchored = _settings(tmp_path, "restored")
    unanchored = anchored.model_copy(update={"audit": anchored.audit.model_copy(update={"anchor_file": None})})
    report = restore(unanchored, archive, backup_key(unanchored))
    assert report.audit_gap is None  # nothing to hold it against
    restored = build_components(anchored, embedder=embedder, parser=parser)
    try:
        verified = _trail(restored).verify()
        assert not verified.ok and f"-{lost_to} are missing" in (verified.problem or "")
    finally:
        restored.close()


def test_a_forged_anchor_file_stops_the_restore(site: Components, tmp_path: Path) -> None:
    trail = _trail(site)
    _anchor(trail)
    archive = tmp_path / "site.enclave-backup"
    _backup(site, archive)
    anchor_file = site.settings.audit.anchor_file
    assert anchor_file is not None
    genuine = json.loads(anchor_file.read_text().splitlines()[-1])
    forged = genuine | {"head_seq": int(genuine["head_seq"]) + 1000}  # vouches for records that never were
    with anchor_file.open("a") as handle:
        handle.write(json.dumps(forged) + "\n")

    target = _settings(tmp_path, "restored")
    with pytest.raises(BackupRefused, match="cannot be trusted"):
        restore(target, archive, backup_key(target), accept_audit_gap=True)
    assert [p for p in target.data_dir.rglob("*") if p.is_file()] == []

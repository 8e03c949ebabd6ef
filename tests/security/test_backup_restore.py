"""Backup and restore: the same documents and answers after a restore into an empty data directory,
altered or truncated archives refused, and an erasure made after the backup still holding after it.

Real components: Qdrant Edge, SQLite, the packaged embedder; the canary is scanned for in every byte.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import documents as docs
from ingest.audit.trail import Actor
from ingest.backup.archive import ArchiveInvalid, BackupKeyWrong, backup_key, write_key_file
from ingest.backup.restore import restore, verify_archive
from ingest.backup.snapshot import BackupRefused, take_backup
from ingest.config import Settings
from ingest.erasure import erase_document
from ingest.index.port import AccessFilter
from ingest.runtime import Components, build_components
from ingest.worker import drain
from tests.conftest import make_settings
from tests.security.test_erasure_canary import hits

CANARY = f"qb{uuid.uuid4().hex[:16]}zz"
KEEP = "The turbine maintenance contract renews every April with a ninety day notice period.\n"
ERASE = f"Patient {CANARY} was admitted on March 3 with a fractured wrist and discharged the same day.\n"


def _settings(root: Path, name: str) -> Settings:
    secrets = root / "secrets"
    secrets.mkdir(exist_ok=True)
    key_file = secrets / "backup.key"
    if not key_file.exists():
        write_key_file(key_file)
    return make_settings(
        root / name,
        compliance={"master_key_file": secrets / "master.key"},
        backup={"key_file": key_file, "erasure_ledger": secrets / "erasure-ledger.jsonl"},
    )


@pytest.fixture
def site(tmp_path: Path, embedder, parser) -> Iterator[tuple[Components, dict[str, str]]]:  # type: ignore[no-untyped-def]
    components = build_components(_settings(tmp_path, "data"), embedder=embedder, parser=parser)
    ids = {}
    for name, text in (("keep.txt", KEEP), (f"erase-{CANARY}.txt", ERASE)):
        upload = docs.Upload(filename=name, data=text.encode(), tenant="default", collection="default")
        ids[name[:4]] = docs.submit(components, upload).document.id
    drain(components)
    try:
        yield components, ids
    finally:
        components.close()


def _search(components: Components, text: str) -> list[tuple[str, str]]:
    dense = components.embedder.embed_query(text)
    sparse = components.sparse.embed_query(text)
    found = components.index.search(dense, sparse, AccessFilter(tenant="default"), 5)
    return [(c.record.document_id, c.record.id) for c in found.chunks]


def _backup(components: Components, dest: Path) -> Path:
    settings = components.settings
    take_backup(settings, dest, backup_key(settings), index=components.index)
    return dest


def test_restore_into_empty_directory_gives_same_documents_and_results(site, tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    components, ids = site
    before = [_search(components, q) for q in ("turbine contract notice", "patient admitted fractured wrist")]
    archive = _backup(components, tmp_path / "site.enclave-backup")
    assert CANARY.encode() not in archive.read_bytes()  # the archive holds no clear text

    target = _settings(tmp_path, "restored")
    report = restore(target, archive, backup_key(target))
    assert report.documents == 2 and report.erasures_reapplied == 0
    restored = build_components(target, embedder=embedder, parser=parser)
    try:
        after = [_search(restored, q) for q in ("turbine contract notice", "patient admitted fractured wrist")]
        assert after == before and after[0][0][0] == ids["keep"]
        events = [r.action for r in restored.compliance.audit.records()]
        assert events[-1] == "backup.restored"
        assert restored.compliance.audit.verify().ok
    finally:
        restored.close()


def test_altered_truncated_or_foreign_key_archives_are_refused(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    components, _ = site
    archive = _backup(components, tmp_path / "site.enclave-backup")
    manifest = verify_archive(archive, backup_key(components.settings))
    assert "data/enclave.db" in manifest["members"] and manifest["documents"] == 2
    raw = archive.read_bytes()
    key = backup_key(components.settings)

    flipped = tmp_path / "flipped"
    flipped.write_bytes(raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 1]) + raw[len(raw) // 2 + 1 :])
    with pytest.raises(ArchiveInvalid, match="integrity check"):
        verify_archive(flipped, key)
    for cut in (len(raw) - 1, len(raw) - 200, len(raw) // 2):
        truncated = tmp_path / f"truncated-{cut}"
        truncated.write_bytes(raw[:cut])
        with pytest.raises(ArchiveInvalid, match="truncated|integrity"):
            verify_archive(truncated, key)
    other = tmp_path / "other.key"
    other.write_text(base64.b64encode(b"k" * 32).decode())
    other.chmod(0o600)
    foreign = components.settings.model_copy(
        update={"backup": components.settings.backup.model_copy(update={"key_file": other})}
    )
    with pytest.raises(BackupKeyWrong):
        verify_archive(archive, backup_key(foreign))

    target = _settings(tmp_path, "restored")
    with pytest.raises(ArchiveInvalid):
        restore(target, tmp_path / f"truncated-{len(raw) // 2}", key)
    assert not (target.data_dir / "enclave.db").exists()  # nothing moved into place


def test_restore_refuses_an_occupied_data_directory(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    components, _ = site
    archive = _backup(components, tmp_path / "site.enclave-backup")
    with pytest.raises(BackupRefused, match="empty data directory"):
        restore(components.settings, archive, backup_key(components.settings))
    elsewhere = _settings(tmp_path, "restored")
    keyless = elsewhere.model_copy(
        update={"compliance": elsewhere.compliance.model_copy(update={"master_key_file": tmp_path / "none" / "k"})}
    )
    with pytest.raises(BackupRefused, match="master key file .* is missing"):
        restore(keyless, archive, backup_key(keyless))
    assert not (tmp_path / "none" / "k").exists() and not (tmp_path / "restored" / "enclave.db").exists()


def test_erasure_after_backup_survives_restore(site, tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    components, ids = site
    archive = _backup(components, tmp_path / "site.enclave-backup")
    receipt = erase_document(components, Actor.system("default", "dpo"), ids["eras"])
    assert receipt.keys_destroyed == 1

    target = _settings(tmp_path, "restored")
    report = restore(target, archive, backup_key(target))
    assert report.documents_erased == [ids["eras"]] and report.erasures_reapplied == 1

    assert hits(target.data_dir, CANARY.encode()) == []
    restored = build_components(target, embedder=embedder, parser=parser)
    try:
        found = _search(restored, f"patient {CANARY} admitted fractured wrist")
        assert ids["eras"] not in {doc for doc, _ in found} and found  # the kept document still answers
        assert restored.index.count(AccessFilter(tenant="default", document_ids=(ids["eras"],))) == 0
        assert hits(target.data_dir, CANARY.encode()) == []
    finally:
        restored.close()
    ledger = target.backup.erasure_ledger
    assert ledger is not None and CANARY.encode() not in ledger.read_bytes()


def test_backup_needs_an_erasure_ledger(tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, "data")
    bare = settings.model_copy(update={"backup": settings.backup.model_copy(update={"erasure_ledger": None})})
    with pytest.raises(BackupRefused, match="ERASURE_LEDGER"):
        take_backup(bare, tmp_path / "x.enclave-backup", backup_key(bare))


def test_cli_backs_up_a_stopped_site_verifies_refuses_tampering_and_restores(  # type: ignore[no-untyped-def]
    site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import service.backup_cli
    from service.cli import app

    components, ids = site
    components.close()  # as with `enclave serve` stopped: the command opens the index itself, exclusively
    archive = tmp_path / "cli.enclave-backup"
    current = {"settings": components.settings}
    monkeypatch.setattr(service.backup_cli, "get_settings", lambda: current["settings"])
    runner = CliRunner()
    env = {"COLUMNS": "400"}

    made = runner.invoke(app, ["backup", str(archive)], env=env)
    assert made.exit_code == 0 and "2 documents" in made.output, made.output
    checked = runner.invoke(app, ["backup", "verify", str(archive)], env=env)
    assert checked.exit_code == 0 and "intact" in checked.output, checked.output
    tampered = tmp_path / "tampered.enclave-backup"
    raw = bytearray(archive.read_bytes())
    raw[-40] ^= 0x55
    tampered.write_bytes(bytes(raw))
    refused = runner.invoke(app, ["backup", "verify", str(tampered)], env=env)
    assert refused.exit_code == 2 and "integrity check" in refused.output, refused.output

    current["settings"] = _settings(tmp_path, "restored")
    restored = runner.invoke(app, ["restore", str(archive)], env=env)
    assert restored.exit_code == 0 and "restored 2 documents" in restored.output, restored.output
    assert (tmp_path / "restored" / "enclave.db").exists() and ids


def test_backups_taken_during_ingest_restore_no_chunk_without_its_rows(site, tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    import threading

    from sqlmodel import Session, func, select

    from ingest.store.models import Chunk, Document

    components, _ = site
    stop = threading.Event()

    def ingest_forever() -> None:
        for i in range(200):
            if stop.is_set():
                return
            text = f"Supply agreement {i}: the vendor ships part {i * 7} within {i + 3} days of each order.\n" * 3
            upload = docs.Upload(filename=f"supply-{i}.txt", data=text.encode(), tenant="default", collection="default")
            docs.submit(components, upload)
            drain(components)

    writer = threading.Thread(target=ingest_forever)
    writer.start()
    archives = []
    try:
        for n in range(3):
            __import__("time").sleep(1.5)
            archives.append(_backup(components, tmp_path / f"during-{n}.enclave-backup"))
    finally:
        stop.set()
        writer.join()
    documents = []
    for n, archive in enumerate(archives):
        target = _settings(tmp_path, f"restored-{n}")
        restore(target, archive, backup_key(target))
        restored = build_components(target, embedder=embedder, parser=parser)
        try:
            with Session(restored.engine) as session:
                rows = dict(session.exec(select(Chunk.document_id, func.count()).group_by(Chunk.document_id)).all())
                documents.append(len(session.exec(select(Document.id)).all()))
            every = restored.index.count(AccessFilter(tenant="default"))
            per_document = {d: restored.index.count(AccessFilter(tenant="default", document_ids=(d,))) for d in rows}
            assert per_document == rows  # every document's chunk rows and its index points agree
            assert every == sum(rows.values())  # and no point belongs to a document without rows
        finally:
            restored.close()
    assert documents[-1] > documents[0] > 2  # the backups really were taken while documents kept arriving

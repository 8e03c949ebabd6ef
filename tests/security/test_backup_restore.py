"""Backup and restore: the same documents and answers after a restore into an empty data directory,
altered or truncated archives refused, and an erasure made after the backup still holding after it.

Real components: Qdrant Edge, SQLite and PostgreSQL (pgserver), the packaged embedder; the canary is
scanned for in every byte of the data directory and of a plain dump of the restored PostgreSQL database.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from ingest import documents as docs
from ingest.audit.trail import Actor
from ingest.backup.archive import ArchiveInvalid, BackupKeyWrong, backup_key, write_key_file
from ingest.backup.postgres_dump import enclave_tables, libpq_target, tool_path
from ingest.backup.restore import restore, verify_archive
from ingest.backup.snapshot import BackupRefused, take_backup
from ingest.config import IndexSettings, Settings
from ingest.erasure import erase_document
from ingest.index.port import AccessFilter
from ingest.keys.keyring import document_key_id
from ingest.runtime import Components, build_components
from ingest.store.compliance_models import DataKey
from ingest.store.models import Document
from ingest.worker import drain
from tests.conftest import make_settings
from tests.postgres import STORES, PostgresCluster
from tests.security.test_erasure_canary import hits

CANARY = f"qb{uuid.uuid4().hex[:16]}zz"
KEEP = "The turbine maintenance contract renews every April with a ninety day notice period.\n"
ERASE = f"Patient {CANARY} was admitted on March 3 with a fractured wrist and discharged the same day.\n"


def _settings(root: Path, name: str, database_url: str | None = None) -> Settings:
    secrets = root / "secrets"
    secrets.mkdir(exist_ok=True)
    key_file = secrets / "backup.key"
    if not key_file.exists():
        write_key_file(key_file)
    database = {} if database_url is None else {"database_url": database_url}
    return make_settings(
        root / name,
        compliance={"master_key_file": secrets / "master.key"},
        backup={"key_file": key_file, "erasure_ledger": secrets / "erasure-ledger.jsonl"},
        **database,
    )


ON_BOTH = pytest.mark.parametrize("store", STORES, indirect=True)
Databases = Callable[..., str | None]


@pytest.fixture
def store(request: pytest.FixtureRequest) -> str:
    """The relational store of the site: SQLite unless a test is parametrised with ``ON_BOTH``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def databases(request: pytest.FixtureRequest) -> Iterator[Databases]:
    """``databases(kind, migrated=…)``: None for SQLite (the data directory's own file), else a new PostgreSQL
    database's URL, dropped after the test."""
    made: list[str] = []

    def make(kind: str, *, migrated: bool) -> str | None:
        if kind == "sqlite":
            return None
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        made.append(cluster.create_database(migrated=migrated))
        return cluster.url(made[-1])

    yield make
    if made:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        for name in made:
            cluster.drop_database(name)


@pytest.fixture
def site(  # type: ignore[no-untyped-def]
    tmp_path: Path, store: str, databases: Databases, embedder, parser
) -> Iterator[tuple[Components, dict[str, str]]]:
    settings = _settings(tmp_path, "data", databases(store, migrated=True))
    components = build_components(settings, embedder=embedder, parser=parser)
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


def _refused_elsewhere(archive: Path, target: Settings, match: str) -> None:
    with pytest.raises(BackupRefused, match=match):
        restore(target, archive, backup_key(target))
    files = [p for p in target.data_dir.rglob("*") if p.is_file()] if target.data_dir.exists() else []
    assert files == []  # nothing was moved into place
    if target.database_url is not None and match != "Enclave tables":
        assert enclave_tables(target.database_url) == []  # and nothing restored into the database


@ON_BOTH
def test_restore_into_empty_directory_gives_same_documents_and_results(  # type: ignore[no-untyped-def]
    site, store: str, databases: Databases, tmp_path: Path, embedder, parser
) -> None:
    components, ids = site
    before = [_search(components, q) for q in ("turbine contract notice", "patient admitted fractured wrist")]
    archive = _backup(components, tmp_path / "site.enclave-backup")
    assert CANARY.encode() not in archive.read_bytes()  # the archive holds no clear text
    assert verify_archive(archive, backup_key(components.settings))["database"] == store

    if store == "postgresql":  # an existing Enclave database, and a SQLite site, are refused
        _refused_elsewhere(archive, _settings(tmp_path, "in-use", databases(store, migrated=True)), "Enclave tables")
        _refused_elsewhere(archive, _settings(tmp_path, "on-sqlite"), "backup of a PostgreSQL store")
    elif "postgresql" in STORES:
        pg = databases("postgresql", migrated=False)
        _refused_elsewhere(archive, _settings(tmp_path, "on-pg", pg), "backup of a SQLite store")
    target = _settings(tmp_path, "restored", databases(store, migrated=False))
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


def _database_bytes(settings: Settings) -> bytes:
    """A plain SQL dump of a PostgreSQL store (its rows as text), or nothing for SQLite (scanned as a file)."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return b""
    conninfo, env = libpq_target(url)
    done = subprocess.run(  # noqa: S603
        [str(tool_path(settings, "pg_dump")), "--format=plain", f"--dbname={conninfo}"],
        env=env,
        capture_output=True,
        check=True,
    )
    return done.stdout


@ON_BOTH
def test_erasure_after_backup_survives_restore(  # type: ignore[no-untyped-def]
    site, store: str, databases: Databases, tmp_path: Path, embedder, parser
) -> None:
    components, ids = site
    archive = _backup(components, tmp_path / "site.enclave-backup")
    erased_key = document_key_id(ids["eras"])
    assert erased_key.encode() in _database_bytes(components.settings) or store == "sqlite"  # as in the backup
    receipt = erase_document(components, Actor.system("default", "dpo"), ids["eras"])
    assert receipt.keys_destroyed == 1

    target = _settings(tmp_path, "restored", databases(store, migrated=False))
    report = restore(target, archive, backup_key(target))
    assert report.documents_erased == [ids["eras"]] and report.erasures_reapplied == 1

    assert hits(target.data_dir, CANARY.encode()) == []
    dumped = _database_bytes(target)
    assert CANARY.encode() not in dumped and erased_key.encode() not in dumped  # the key is gone from the database
    restored = build_components(target, embedder=embedder, parser=parser)
    try:
        with Session(restored.engine) as session:
            assert session.get(Document, ids["eras"]) is None and session.get(Document, ids["keep"]) is not None
            assert session.get(DataKey, erased_key) is None
            assert session.get(DataKey, document_key_id(ids["keep"])) is not None
        found = _search(restored, f"patient {CANARY} admitted fractured wrist")
        assert ids["eras"] not in {doc for doc, _ in found} and found  # the kept document still answers
        assert restored.index.count(AccessFilter(tenant="default", document_ids=(ids["eras"],))) == 0
        assert hits(target.data_dir, CANARY.encode()) == []
    finally:
        restored.close()
    ledger = target.backup.erasure_ledger
    assert ledger is not None and CANARY.encode() not in ledger.read_bytes()


def test_restore_rebuilds_the_index_with_the_sites_index_settings(  # type: ignore[no-untyped-def]
    tmp_path: Path, embedder, parser
) -> None:
    """Restore re-opens the index to purge erased points and rebuild its graph: with the site's own graph
    and search settings, not the library's (an index restored on defaults would keep them on disk)."""
    tuned = {"hnsw_m": 24, "hnsw_ef_construct": 64, "search_threads": 2}
    source = _settings(tmp_path, "data").model_copy(update={"index": IndexSettings(**tuned)})
    components = build_components(source, embedder=embedder, parser=parser)
    try:
        upload = docs.Upload(filename="keep.txt", data=KEEP.encode(), tenant="default", collection="default")
        docs.submit(components, upload)
        drain(components)
        archive = _backup(components, tmp_path / "site.enclave-backup")
    finally:
        components.close()
    target = _settings(tmp_path, "restored").model_copy(update={"index": IndexSettings(**tuned)})
    restore(target, archive, backup_key(target))
    stored = json.loads((target.index_dir / "edge_config.json").read_text())
    assert (stored["hnsw_config"]["m"], stored["hnsw_config"]["ef_construct"]) == (24, 64)
    assert stored["max_search_threads"] == 2


def test_backup_needs_an_erasure_ledger(tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(tmp_path, "data")
    bare = settings.model_copy(update={"backup": settings.backup.model_copy(update={"erasure_ledger": None})})
    with pytest.raises(BackupRefused, match="ERASURE_LEDGER"):
        take_backup(bare, tmp_path / "x.enclave-backup", backup_key(bare))


def test_cli_backs_up_a_stopped_site_verifies_refuses_tampering_and_restores(  # type: ignore[no-untyped-def]
    site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import service.cli.backup
    from service.cli import app

    components, ids = site
    components.close()  # as with `enclave serve` stopped: the command opens the index itself, exclusively
    archive = tmp_path / "cli.enclave-backup"
    current = {"settings": components.settings}
    monkeypatch.setattr(service.cli.backup, "get_settings", lambda: current["settings"])
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


@ON_BOTH
def test_backups_taken_during_ingest_restore_no_chunk_without_its_rows(  # type: ignore[no-untyped-def]
    site, store: str, databases: Databases, tmp_path: Path, embedder, parser
) -> None:
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
        target = _settings(tmp_path, f"restored-{n}", databases(store, migrated=False))
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

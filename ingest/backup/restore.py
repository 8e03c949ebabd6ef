"""Restoring a backup into an empty data directory, then re-applying every erasure the ledger holds.

Order: check the whole archive while unpacking it into a staging directory (nothing is moved into
place before the last frame and the manifest check out, nor when the archive is of the other store
kind); PostgreSQL: ``pg_restore`` into the empty database, in one transaction; move the rest into
place; check that the site's
master key (never in the archive) unwraps the restored keys; bring the schema to this build;
re-apply the erasure ledger (rows, keys, index points, originals) and remove index points whose
document has no row; vacuum; append ``backup.restored`` to the audit chain and anchor it. A backup
older than the newest audit anchor is refused before anything moves, unless the operator accepts the
gap: then the record names it and the anchor is a rebase.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, col, delete, func, select

from ingest.audit.anchor import AnchorLog, anchor_log
from ingest.audit.chain import Head
from ingest.audit.trail import Actor, AuditEvent, AuditTrail
from ingest.backup.archive import BackupKey, read_archive
from ingest.backup.ledger import LedgerEntry, erasure_ledger
from ingest.backup.postgres_dump import PG_MEMBER, enclave_tables, restore_dump
from ingest.backup.snapshot import (
    BLOB_PREFIX,
    DB_MEMBER,
    INDEX_PREFIX,
    BackupRefused,
    check_backup_possible,
    database_kind,
)
from ingest.config import Settings
from ingest.erasure import checkpoint_wal
from ingest.index.port import VectorIndex
from ingest.keys.keyring import KeyRing
from ingest.keys.local_keyfile import LocalKeyFile
from ingest.runtime import edge_index
from ingest.store.compliance_models import DataKey
from ingest.store.db import create_schema, make_engine, session_scope
from ingest.store.migrate import upgrade
from ingest.store.models import Chunk, Document, Job

log = logging.getLogger(__name__)


@dataclass
class RestoreReport:
    created_at: str
    documents: int
    index_points: int
    erasures_reapplied: int = 0
    documents_erased: list[str] = field(default_factory=list)
    orphan_points_removed: int = 0
    audit_seq: int | None = None
    seconds: float = 0.0
    # the backup ends before the newest audit anchor (restored with accept_audit_gap): what was given up
    audit_gap: dict[str, Any] | None = None
    # the restored chain does not extend the newest anchor although it reaches it (another history)
    audit_problem: str | None = None


def verify_archive(src: Path, key: BackupKey) -> dict[str, Any]:
    """Check every frame and every member's hash against the manifest, writing nothing; returns the manifest."""
    return read_archive(src, key)


def restore(
    settings: Settings,
    src: Path,
    key: BackupKey,
    *,
    actor: str = "enclave-restore",
    accept_audit_gap: bool = False,
) -> RestoreReport:
    """Restore ``src`` into the (empty) data directory of ``settings``.

    With audit anchoring configured, the archive's audit head (in its manifest) is held against the newest
    anchor before anything is moved into place: a backup older than the anchor would silently drop the
    audit records after it, so it is refused unless ``accept_audit_gap``; then the ``backup.restored``
    record names the lost range and a signed rebase anchor is appended (README "Backup and restore").

    :raises BackupRefused: the data directory (or the PostgreSQL database) already holds a site, the
        ledger is not configured, the master key file is missing, the archive is of the other store kind,
        the backup is older than the newest audit anchor (without ``accept_audit_gap``), or the anchor file
        is forged.
    :raises PostgresToolFailed: pg_restore failed (the database is left empty).
    :raises ArchiveInvalid: the archive is altered, truncated or does not match its manifest
        (then nothing was written to the data directory).
    :raises BackupKeyWrong: the archive was sealed under another key.
    :raises KeyUnavailable: the master key file is missing or does not unwrap the restored keys.
    """
    started = time.perf_counter()
    check_backup_possible(settings)
    _refuse_occupied(settings)
    if not settings.master_key_file.exists():  # never let the key ring create a new one: nothing would unwrap
        raise BackupRefused(
            f"the master key file {settings.master_key_file} is missing; it is not in the archive: put the site's "
            "master key there first (or set ENCLAVE_COMPLIANCE__MASTER_KEY_FILE to where it is)"
        )
    anchors = anchor_log(settings)
    gaps: list[dict[str, Any]] = []
    manifest = _unpack(settings, src, key, lambda found: gaps.extend(_audit_gap(anchors, found, accept_audit_gap)))
    engine = make_engine(settings.resolved_database_url)
    try:
        keyring = KeyRing(engine, LocalKeyFile(settings.master_key_file))
        keyring.warm_up()  # the master key must open the restored keys, or nothing of it is readable
        _bring_schema_current(engine)
        report = RestoreReport(
            str(manifest.get("created_at")),
            int(manifest.get("documents", 0)),
            int(manifest.get("index", {}).get("points", 0)),
        )
        _reapply(settings, engine, keyring, manifest, report)
        trail = AuditTrail(engine, keyring, anchors)
        report.audit_gap = gaps[0] if gaps else None
        anchored = anchors.read().latest if anchors is not None and report.audit_gap is None else None
        if anchored is not None:  # the archive reaches the anchor: the anchored record must be in it, unchanged
            report.audit_problem = trail.extension_problem(anchored)
        detail: dict[str, Any] = {
            "backup_created_at": report.created_at,
            "documents": report.documents,
            "erasures_reapplied": report.erasures_reapplied,
            "documents_erased": len(report.documents_erased),
            "orphan_points_removed": report.orphan_points_removed,
        }
        if report.audit_gap is not None:
            detail["audit_gap"] = report.audit_gap
        if report.audit_problem is not None:
            detail["audit_problem"] = report.audit_problem[:512]
        record = trail.record(
            AuditEvent(
                Actor.system(settings.default_tenant, actor),
                "backup.restored",
                document_ids=report.documents_erased,
                detail=detail,
            )
        )
        report.audit_seq = record.seq
        if anchors is not None and report.audit_problem is None:
            _anchor_restore(anchors, trail, report.audit_gap)
    finally:
        engine.dispose()
    report.seconds = time.perf_counter() - started
    return report


def _audit_gap(anchors: AnchorLog | None, manifest: dict[str, Any], accept: bool) -> list[dict[str, Any]]:
    """The audit records this archive lacks that the newest anchor vouches for (empty: none, or not knowable yet).

    :raises BackupRefused: there is a gap and ``accept`` is false, or the anchor file is not genuine.
    """
    if anchors is None:
        return []
    reading = anchors.read()
    if reading.problem is not None:
        raise BackupRefused(f"the audit anchors cannot be trusted, so this restore is not checked: {reading.problem}")
    latest, audit = reading.latest, manifest.get("audit")
    if latest is None or not latest.seq or not isinstance(audit, dict):
        return []  # nothing anchored yet, or an archive without its audit head: checked after the restore
    head_seq, head_hash = int(audit["head_seq"]), str(audit["head_hash"])
    if head_seq > latest.seq or (head_seq == latest.seq and head_hash == latest.hash):
        return []  # the archive reaches the anchor; that the anchored record is in it is checked after the restore
    gap = {
        "restored_head_seq": head_seq,
        "restored_head_hash": head_hash,
        "anchored_seq": latest.seq,
        "anchored_hash": latest.hash,
        "anchored_time": latest.time,
    }
    if not accept:
        lost = (
            f"audit records {head_seq + 1}-{latest.seq}"
            if head_seq < latest.seq
            else f"audit record {latest.seq} as anchored (the archive holds another one)"
        )
        raise BackupRefused(
            f"this backup ends at audit record {head_seq}, but the audit anchor of {latest.time} vouches for "
            f"record {latest.seq}: restoring it gives up {lost}. Restore a newer backup if you have one; if not, "
            "rerun with --accept-audit-gap: the restore record will name the lost range and a signed rebase "
            "anchor will be appended to the anchor file (its older anchors stay there as evidence)"
        )
    return [gap]


def _anchor_restore(anchors: AnchorLog, trail: AuditTrail, gap: dict[str, Any] | None) -> None:
    """Anchor the chain as restored; after an accepted gap, as a rebase that names the anchor it gives up."""
    with anchors.locked():
        given_up = (
            Head(int(gap["anchored_seq"]), str(gap["anchored_hash"]), str(gap["anchored_time"]))
            if gap is not None
            else None
        )
        anchors.append(trail.head(), "restore", rebased_from=given_up)


def _bring_schema_current(engine: Engine) -> None:
    """SQLite migrates itself; a restored PostgreSQL database is migrated here, as no replica runs on it yet."""
    if engine.dialect.name == "sqlite":
        create_schema(engine)
        return
    upgrade(engine)


def _refuse_occupied(settings: Settings) -> None:
    url = settings.resolved_database_url
    paths = [settings.index_dir, settings.blob_dir]
    if database_kind(settings) == "postgresql":
        tables = enclave_tables(url)
        if tables:
            raise BackupRefused(
                f"the database {_shown(url)} already holds Enclave tables ({', '.join(tables[:4])}, …): restore goes "
                "into an empty database; create a new one (CREATE DATABASE …) and point ENCLAVE_DATABASE_URL at it, "
                "or drop the old one first"
            )
    else:
        paths.insert(0, Path(url.removeprefix("sqlite:///")))
    occupied = [p for p in paths if _holds_data(p)]
    if occupied:
        raise BackupRefused(
            f"the data directory {settings.data_dir} already holds a site ({', '.join(str(p) for p in occupied)}): "
            "restore goes into an empty data directory; move the old one aside first"
        )


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _refuse_other_kind(settings: Settings, manifest: dict[str, Any]) -> None:
    taken, here = str(manifest.get("database", "sqlite")), database_kind(settings)
    if taken != here:
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupRefused(
            f"this archive is a backup of a {names.get(taken, taken)} store, but ENCLAVE_DATABASE_URL names a "
            f"{names[here]} one: restore it with ENCLAVE_DATABASE_URL set to "
            + ("an empty PostgreSQL database" if taken == "postgresql" else "nothing (the embedded SQLite store)")
        )


def _holds_data(path: Path) -> bool:
    if path.is_dir():
        return any(p.is_file() for p in path.rglob("*"))
    return path.exists()


def _unpack(settings: Settings, src: Path, key: BackupKey, check: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    staging = settings.data_dir / ".restoring"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    try:
        manifest = read_archive(src, key, lambda name, chunks: _write_member(staging, name, chunks))
        _refuse_other_kind(settings, manifest)
        check(manifest)  # before anything is moved into place
        if database_kind(settings) == "postgresql":  # first: if it fails, nothing was moved into the data directory
            restore_dump(settings, staging / PG_MEMBER)
        _move_into_place(settings, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _write_member(staging: Path, name: str, chunks: Iterator[bytes]) -> None:
    target = staging / name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def _move_into_place(settings: Settings, staging: Path) -> None:
    for name, target in ((INDEX_PREFIX, settings.index_dir), (BLOB_PREFIX, settings.blob_dir)):
        unpacked = staging / name
        if unpacked.is_dir():
            shutil.rmtree(target, ignore_errors=True)  # empty (checked before): created by an earlier start
            os.replace(unpacked, target)
    if database_kind(settings) == "postgresql":
        return
    database = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    for stale in (database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        stale.unlink(missing_ok=True)
    os.replace(staging / DB_MEMBER, database)


# -- re-applying erasures -----------------------------------------------------------------------------
def _reapply(
    settings: Settings, engine: Engine, keyring: KeyRing, manifest: dict[str, Any], report: RestoreReport
) -> None:
    erased = _erase_ledger_rows(settings, engine, keyring, report)
    _purge_originals(settings, erased)
    dim = manifest.get("index", {}).get("dim")
    if dim:
        report.orphan_points_removed = _purge_index(settings, engine, int(dim), erased)
    _compact(engine, report)


def _erase_ledger_rows(settings: Settings, engine: Engine, keyring: KeyRing, report: RestoreReport) -> dict[str, str]:
    """Delete every ledger entry's rows and keys the store still holds; returns document id -> tenant."""
    ledger = erasure_ledger(settings)
    entries = ledger.entries() if ledger is not None else []
    erased: dict[str, str] = {}
    with session_scope(engine) as session:
        if engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("PRAGMA secure_delete=ON")
        for entry in entries:
            found = _erase_rows(session, keyring, entry)
            report.erasures_reapplied += bool(found) or _tenant_keys_removed(session, entry)
            erased.update(found)
    report.documents_erased = sorted(erased)
    return erased


def _compact(engine: Engine, report: RestoreReport) -> None:
    checkpoint_wal(engine, vacuum=True)
    if engine.dialect.name == "postgresql" and report.erasures_reapplied:
        _rewrite_tables(engine)


def reapply_ledger(settings: Settings, index: VectorIndex, *, actor: str = "enclave-restore") -> RestoreReport:
    """Re-apply the erasure ledger to a site restored by hand: the Qdrant cluster path (README "Backup and
    restore"), where the database comes back with ``pg_restore``, the collection from Qdrant snapshots and
    the originals from a volume copy, none of which knows about erasures made after the backup.

    Through the index port (``index``: the site's index, opened), so any adapter works. Every ledger
    entry's documents are deleted from the index, whether or not the restored store still held them
    (the snapshot and the dump need not be of the same instant). Audited as ``backup.ledger_reapplied``.

    :raises BackupRefused: no erasure ledger is configured, or the master key file is missing.
    :raises KeyUnavailable: the master key does not unwrap the restored keys.
    """
    started = time.perf_counter()
    ledger = erasure_ledger(settings)
    if ledger is None:
        raise BackupRefused("set ENCLAVE_BACKUP__ERASURE_LEDGER to the ledger the site wrote its erasures to")
    if not settings.master_key_file.exists():
        raise BackupRefused(f"the master key file {settings.master_key_file} is missing: put the site's key there")
    entries = ledger.entries()
    engine = make_engine(settings.resolved_database_url)
    try:
        keyring = KeyRing(engine, LocalKeyFile(settings.master_key_file))
        keyring.warm_up()
        _bring_schema_current(engine)
        with session_scope(engine) as session:
            documents = session.exec(select(func.count()).select_from(Document)).one()
        report = RestoreReport(created_at="", documents=documents, index_points=0)
        erased = _erase_ledger_rows(settings, engine, keyring, report)
        _purge_originals(settings, erased)
        # every ledger document, held by the restored store or not, and a tenant erasure's documents it held
        points = {(entry.tenant, d) for entry in entries for d in entry.document_ids}
        for tenant, document_id in points | {(t, d) for d, t in erased.items()}:
            index.delete_document(tenant, document_id)
        index.flush()
        _compact(engine, report)
        record = AuditTrail(engine, keyring, anchor_log(settings)).record(
            AuditEvent(
                Actor.system(settings.default_tenant, actor),
                "backup.ledger_reapplied",
                document_ids=report.documents_erased,
                detail={"erasures_reapplied": report.erasures_reapplied, "ledger_entries": len(entries)},
            )
        )
        report.audit_seq = record.seq
    finally:
        engine.dispose()
    report.seconds = time.perf_counter() - started
    return report


def _rewrite_tables(engine: Engine) -> None:
    """PostgreSQL: rewrite the tables erasures deleted from, so no dead row keeps an erased key on disk."""
    tables = (Chunk.__tablename__, Job.__tablename__, Document.__tablename__, DataKey.__tablename__)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            connection.exec_driver_sql(f'VACUUM FULL "{table}"')


def _erase_rows(session: Session, keyring: KeyRing, entry: LedgerEntry) -> dict[str, str]:
    """Remove the entry's documents (and, for a tenant, every document it had then) that the backup still holds."""
    ids = set(entry.document_ids)
    if entry.scope == "tenant":
        ids |= set(
            session.exec(
                select(Document.id).where(
                    Document.tenant == entry.tenant, col(Document.created_at) <= _as_datetime(entry.at)
                )
            ).all()
        )
    ids |= _attachments(session, ids)
    present = {d.id: d.tenant for d in session.exec(select(Document).where(col(Document.id).in_(ids))).all()}
    if present:
        session.execute(delete(Chunk).where(col(Chunk.document_id).in_(present)))
        session.execute(delete(Job).where(col(Job.document_id).in_(present)))
        session.execute(delete(Document).where(col(Document.id).in_(present)))
    keyring.destroy_document_keys(session, sorted(ids))
    return present


def _attachments(session: Session, ids: set[str]) -> set[str]:
    found, frontier = set(ids), list(ids)
    while frontier:
        children = session.exec(select(Document.id).where(col(Document.parent_id).in_(frontier))).all()
        frontier = [c for c in children if c not in found]
        found.update(frontier)
    return found - ids


def _tenant_keys_removed(session: Session, entry: LedgerEntry) -> bool:
    """A tenant erasure also shreds the tenant key (and its pseudonym key) as it was then."""
    if entry.scope != "tenant":
        return False
    rows = session.exec(select(DataKey).where(DataKey.tenant == entry.tenant)).all()
    stale = [r.id for r in rows if (r.created_at or "") <= entry.at]
    if stale:
        session.execute(delete(DataKey).where(col(DataKey.id).in_(stale)))
    return bool(stale)


def _as_datetime(at: str) -> Any:
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).replace(tzinfo=None)


def _purge_originals(settings: Settings, erased: dict[str, str]) -> None:
    originals = settings.blob_dir / "originals"
    if not originals.is_dir() or not erased:
        return
    for path in originals.iterdir():
        if path.name.split(".v")[0] in erased:  # blob keys are <id> and <id>.v<n> (ingest.versions.blob_key)
            path.unlink()


def _purge_index(settings: Settings, engine: Engine, dim: int, erased: dict[str, str]) -> int:
    """Delete the points of erased documents and of any document without chunk rows; vacuum. Returns orphans removed."""
    with Session(engine) as session:  # a document whose rows did not commit before the cut: its job re-runs
        rows = set(session.exec(select(Chunk.document_id).distinct()).all())
    index = edge_index(settings.index, settings.index_dir, dim)  # its graph is rebuilt: with the site's settings
    index.warm_up()
    try:
        indexed = _indexed_documents(index)
        orphans = {doc: tenant for doc, tenant in indexed.items() if doc not in rows}
        for document_id, tenant in {**orphans, **erased}.items():
            index.delete_document(tenant, document_id)
        index.optimize()
    finally:
        index.close()
    return len(set(orphans) - set(erased))


def _indexed_documents(index: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    offset = None
    selector = qe.PayloadSelector.Include(["document_id", "tenant"])
    while True:
        records, offset = index.shard.scroll(qe.ScrollRequest(offset=offset, limit=1024, with_payload=selector))
        for record in records:
            payload = record.payload or {}
            found[str(payload.get("document_id"))] = str(payload.get("tenant"))
        if offset is None:
            return found

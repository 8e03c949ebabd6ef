"""Taking a backup: one consistent cut of the relational store, the index and the originals.

The cut is taken while no index write can happen: inside ``enclave serve`` under the
:class:`~ingest.index.swap.AtomicSwapIndex` write lock (searches wait for it: that is the pause,
reported), from the CLI with the embedded index opened exclusively (so no `serve`, `ingest` or
worker can write). Within the cut: the SQLite online backup API copies the database into memory
(PostgreSQL: a snapshot is exported, and ``pg_dump`` dumps that snapshot once the cut is over),
the index directory is copied after a flush, the originals are hard-linked (they are written by
rename and never changed in place). The encrypted archive is written after the cut, from the copies.

A chunk is indexed before its rows commit and an erasure commits before it deletes points, so the
cut can hold index points whose rows it lacks, never the reverse; a restore removes such points.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import qdrant_edge as qe

from ingest.backup.archive import ArchiveWriter, BackupKey
from ingest.backup.ledger import erasure_ledger
from ingest.backup.postgres_dump import PG_MEMBER, Snapshot, dump, exported_snapshot, is_postgres
from ingest.config import Settings, inside
from ingest.errors import ConfigurationError, EnclaveError
from ingest.store.compliance_models import AuditRecord, iso_time
from ingest.store.models import Document

if TYPE_CHECKING:
    from ingest.index.port import VectorIndex

DB_MEMBER = "data/enclave.db"
INDEX_PREFIX = "data/index"
BLOB_PREFIX = "data/blobs"


class BackupRefused(EnclaveError):
    """This site cannot be backed up this way; the message says what to do instead."""

    code = "backup_refused"
    status = 409


@dataclass(frozen=True)
class BackupReport:
    path: Path
    archive_bytes: int
    plain_bytes: int
    members: int
    pause_s: float
    seconds: float
    documents: int
    index_points: int


@dataclass(frozen=True)
class _Cut:
    database: bytes | Path  # the SQLite copy, or where the pg_dump goes
    documents: int
    snapshot: Snapshot | None  # PostgreSQL: the exported snapshot pg_dump dumps
    index_dir: Path | None
    blob_dir: Path
    index_points: int
    dim: int | None
    audit_head: tuple[int, str] | None  # the newest audit record in the cut: (seq, hash)


def check_backup_possible(settings: Settings) -> None:
    """:raises BackupRefused: a site this build cannot back up consistently, or one without an erasure ledger."""
    url = settings.resolved_database_url
    if not (url.startswith("sqlite:///") or is_postgres(url)):
        raise BackupRefused("enclave backup covers SQLite and PostgreSQL stores; set ENCLAVE_DATABASE_URL to one")
    if settings.index.backend != "edge":
        raise BackupRefused(
            "enclave backup covers the embedded Qdrant Edge index; a Qdrant cluster is backed up with Qdrant's "
            'snapshot API (README "Backup and restore")'
        )
    if erasure_ledger(settings) is None:
        raise BackupRefused(
            "set ENCLAVE_BACKUP__ERASURE_LEDGER (a file outside the data directory) before taking backups: without "
            "it, restoring a backup would bring back every document erased after it was taken"
        )


def take_backup(settings: Settings, dest: Path, key: BackupKey, index: VectorIndex | None = None) -> BackupReport:
    """Write an encrypted archive of the site to ``dest`` (which must not exist).

    ``index``: the running service's index (an ``AtomicSwapIndex``), when called inside ``serve``;
    without it the embedded index is opened here, exclusively.

    :raises BackupRefused: see :func:`check_backup_possible`; ``dest`` exists.
    :raises PostgresToolFailed: pg_dump failed (nothing is left at ``dest``).
    :raises ServiceUnavailable: without ``index``, another process has the embedded index open.
    """
    check_backup_possible(settings)
    if dest.exists():
        raise BackupRefused(f"{dest} exists; archives are never overwritten: choose a new name")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=settings.data_dir) as tmp:
        staging = Path(tmp)
        os.chmod(staging, 0o700)
        with ExitStack() as snapshot_open:
            pause_started = time.perf_counter()
            with _writes_excluded(settings, index) as held:
                cut = _cut(settings, staging, held, snapshot_open)
            pause = time.perf_counter() - pause_started
            if cut.snapshot is not None and isinstance(cut.database, Path):  # exported in the cut, dumped after it
                dump(settings, cut.snapshot, cut.database)
        manifest = {
            "created_at": iso_time(),
            "database": database_kind(settings),
            "index": {"backend": "edge", "dim": cut.dim, "points": cut.index_points},
            "documents": cut.documents,
            # held against the newest audit anchor on restore: an older backup loses the records after it
            "audit": {"head_seq": cut.audit_head[0], "head_hash": cut.audit_head[1]} if cut.audit_head else None,
            "pause_ms": round(pause * 1000, 1),
        }
        archive, plain, members = _write_archive(dest, key, cut, manifest)
    return BackupReport(
        dest,
        archive,
        plain,
        members,
        pause,
        time.perf_counter() - started,
        cut.documents,
        cut.index_points,
    )


@contextmanager
def _writes_excluded(settings: Settings, index: VectorIndex | None) -> Iterator[Any]:
    """Yield the open Qdrant Edge index with every writer excluded (None: there is no index yet)."""
    if index is not None:
        exclusive = getattr(index, "exclusive", None)
        if exclusive is None:
            raise BackupRefused("the running index cannot exclude writers; stop `enclave serve` and run enclave backup")
        with exclusive() as inner:
            yield inner
        return
    from ingest.index.transfer import open_source  # lazy: imports qdrant-client (0.8 s)

    shard = open_source(settings.index_dir)  # raises ServiceUnavailable while serve (or a worker) holds it
    try:
        yield shard
    finally:
        if shard is not None:
            shard.close()


def database_kind(settings: Settings) -> str:
    """``sqlite`` or ``postgresql``: what the manifest records, and what a restore must match."""
    return "postgresql" if is_postgres(settings.resolved_database_url) else "sqlite"


def _cut(settings: Settings, staging: Path, held: Any, snapshot_open: ExitStack) -> _Cut:
    database: bytes | Path
    snapshot: Snapshot | None = None
    if database_kind(settings) == "postgresql":
        snapshot = snapshot_open.enter_context(exported_snapshot(settings.resolved_database_url))
        database, documents, audit_head = staging / "enclave.pgdump", snapshot.documents, snapshot.audit_head
    else:
        path = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
        database, documents, audit_head = sqlite_snapshot(path)
    points, dim, index_copy = 0, None, None
    if held is not None:
        shard = getattr(held, "shard", held)  # a QdrantEdgeIndex, or the bare shard the CLI opened
        shard.flush()
        points, dim = _index_shape(shard)
        index_copy = staging / "index"
        shutil.copytree(settings.index_dir, index_copy)
    blobs = staging / "blobs"
    _link_tree(settings.blob_dir, blobs)
    return _Cut(database, documents, snapshot, index_copy, blobs, points, dim, audit_head)


def _index_shape(shard: Any) -> tuple[int, int | None]:
    from ingest.index.transfer import source_dimension  # lazy: imports qdrant-client (0.8 s)

    return int(shard.count(qe.CountRequest(exact=True))), source_dimension(shard)


def sqlite_snapshot(path: Path) -> tuple[bytes, int, tuple[int, str] | None]:
    """A transactionally consistent copy of a live SQLite database (WAL included), via the online backup API,
    the number of documents in it and its newest audit record (seq, hash)."""
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(":memory:")
    try:
        source.backup(target)
        documents = int(target.execute(f"SELECT count(*) FROM {Document.__tablename__}").fetchone()[0])
        head = target.execute(f"SELECT seq, hash FROM {AuditRecord.__tablename__} ORDER BY seq DESC LIMIT 1").fetchone()
        return target.serialize(), documents, (int(head[0]), str(head[1])) if head else None
    finally:
        target.close()
        source.close()


def _link_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return
    for path in source.rglob("*"):
        if not path.is_file() or path.name.startswith(".tmp-"):
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


def _write_archive(dest: Path, key: BackupKey, cut: _Cut, manifest: dict[str, Any]) -> tuple[int, int, int]:
    partial = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as sink:
            writer = ArchiveWriter(sink, key)
            if isinstance(cut.database, Path):
                writer.add_file(PG_MEMBER, cut.database)
            else:
                writer.add_bytes(DB_MEMBER, cut.database)
            if cut.index_dir is not None:
                writer.add_tree(INDEX_PREFIX, cut.index_dir)
            writer.add_tree(BLOB_PREFIX, cut.blob_dir)
            plain = writer.finish(manifest)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return dest.stat().st_size, plain, len(writer.members) + 1


def refuse_inside_data_dir(settings: Settings, dest: Path) -> None:
    """:raises ConfigurationError: ``dest`` inside the data directory (lost with the disk it protects)."""
    if inside(dest, settings.data_dir):
        raise ConfigurationError(f"{dest} lies inside ENCLAVE_DATA_DIR; write backups to another disk")

"""/v1/admin/backups: back up the running service, list its archives and verify one (site operators only).

The archive is written by the server into ``ENCLAVE_BACKUP__DIR`` (outside the data directory) and
sealed under the backup key, which the caller never sees: a backup taken over the API hands no data
to the caller. Restoring stays a command (``enclave restore``), run with the service stopped, into an
empty data directory. Whose admins may do this is policy (``site_operator_tenants`` in access.json).
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest.backup.archive import backup_key
from ingest.backup.restore import verify_archive
from ingest.backup.snapshot import BackupRefused, take_backup
from ingest.config import Settings
from ingest.errors import NotFound
from service.auth import Principal, require
from service.compliance.context import AuditDep
from service.deps import StateDep

OperatorDep = Annotated[Principal, require("admin", action="backup")]
router = APIRouter(prefix="/v1/admin/backups", tags=["backups"])

SUFFIX = ".enclave-backup"
NAME = re.compile(r"^enclave-\d{8}T\d{6}Z-[0-9a-f]{8}\.enclave-backup$")
ArchiveName = Annotated[
    str,
    PathParam(pattern=NAME.pattern, description="an archive name as POST /v1/admin/backups returned it"),
]
_taking = threading.Lock()  # one backup at a time: each holds the index write lock for its cut


class BackupArchive(BaseModel):
    name: str = Field(description="the archive's file name in ENCLAVE_BACKUP__DIR")
    bytes: int
    modified_at: datetime


class BackupTaken(BackupArchive):
    members: int = Field(description="files in the archive, its manifest included")
    documents: int
    index_points: int
    pause_ms: float = Field(description="how long index writes and searches waited for the cut")
    seconds: float = Field(description="the whole backup, encryption and fsync included")


class BackupList(BaseModel):
    backups: list[BackupArchive] = Field(description="newest first")


class BackupVerified(BaseModel):
    name: str
    intact: bool = Field(description="every frame and every member's SHA-256 matched the manifest")
    members: int
    taken_at: str
    database: str = Field(description="sqlite or postgresql: what a restore must be configured with")
    documents: int
    index_points: int


def _directory(settings: Settings) -> Path:
    if settings.backup.dir is None:
        raise BackupRefused(
            "set ENCLAVE_BACKUP__DIR (a directory outside the data directory) to take backups over the API; or "
            "stop the service and run `enclave backup DEST`"
        )
    return settings.backup.dir


def _archive(directory: Path, name: str) -> Path:
    path = directory / name
    if not NAME.match(name) or not path.is_file():
        raise NotFound(f"no backup named {name}; GET /v1/admin/backups lists them")
    return path


def _listed(path: Path) -> BackupArchive:
    found = path.stat()
    return BackupArchive(
        name=path.name, bytes=found.st_size, modified_at=datetime.fromtimestamp(found.st_mtime, tz=UTC)
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BackupTaken)
async def create_backup(state: StateDep, principal: OperatorDep, audit: AuditDep) -> BackupTaken:
    """Back up the whole site while it keeps serving: one consistent cut of the store, index and originals.

    Answers 409 when ENCLAVE_BACKUP__DIR or the erasure ledger is not configured, on a Qdrant cluster
    (use Qdrant's snapshot API), and while another backup is being taken.
    """
    settings = state.settings
    with audit.failures("backup.created"):
        directory = _directory(settings)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dest = directory / f"enclave-{stamp}-{secrets.token_hex(4)}{SUFFIX}"
        if not _taking.acquire(blocking=False):
            raise BackupRefused("a backup is being taken now; retry when it has finished")
        try:
            report = await run_in_threadpool(take_backup, settings, dest, backup_key(settings), state.components.index)
        finally:
            _taking.release()
    taken = BackupTaken(
        **_listed(report.path).model_dump(),
        members=report.members,
        documents=report.documents,
        index_points=report.index_points,
        pause_ms=round(report.pause_s * 1000, 1),
        seconds=round(report.seconds, 3),
    )
    audit.record(
        "backup.created",
        detail={"archive": taken.name, "bytes": taken.bytes, "documents": taken.documents, "pause_ms": taken.pause_ms},
    )
    return taken


@router.get("", response_model=BackupList)
def list_backups(state: StateDep, principal: OperatorDep) -> BackupList:
    """The archives in ENCLAVE_BACKUP__DIR that this API wrote, newest first."""
    directory = _directory(state.settings)
    found = (
        [_listed(p) for p in directory.glob(f"enclave-*{SUFFIX}") if NAME.match(p.name)] if directory.is_dir() else []
    )
    return BackupList(backups=sorted(found, key=lambda a: (a.modified_at, a.name), reverse=True))


@router.post("/{name}/verify", response_model=BackupVerified)
async def verify_backup(state: StateDep, principal: OperatorDep, audit: AuditDep, name: ArchiveName) -> BackupVerified:
    """Check an archive without restoring it; 422 when it was altered or truncated, or sealed under another key."""
    settings = state.settings
    with audit.failures("backup.verified"):
        path = _archive(_directory(settings), name)
        manifest = await run_in_threadpool(verify_archive, path, backup_key(settings))
    audit.record("backup.verified", detail={"archive": name})
    return BackupVerified(
        name=name,
        intact=True,
        members=len(manifest["members"]),
        taken_at=str(manifest["created_at"]),
        database=str(manifest.get("database", "sqlite")),
        documents=int(manifest["documents"]),
        index_points=int(manifest["index"]["points"]),
    )

"""``enclave backup DEST``, ``enclave backup verify SRC``, ``enclave backup key FILE`` and ``enclave restore SRC``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ingest.backup.archive import backup_key, write_key_file
from ingest.backup.restore import reapply_ledger, verify_archive
from ingest.backup.restore import restore as run_restore
from ingest.backup.snapshot import refuse_inside_data_dir, take_backup
from ingest.config import get_settings
from ingest.errors import EnclaveError
from ingest.runtime import build_components

out = Console()
err = Console(stderr=True)

BACKUP_HELP = """Write an encrypted, verifiable archive of this site (store, index, originals, wrapped keys) to DEST.

Also: `enclave backup verify SRC` checks an archive without restoring it; `enclave backup key FILE`
creates a backup key file; `enclave backup reapply-ledger` re-applies the erasure ledger to a site
restored by hand (the Qdrant cluster path, README "Backup and restore"). Needs
ENCLAVE_BACKUP__KEY_FILE (or __PASSPHRASE) and ENCLAVE_BACKUP__ERASURE_LEDGER. Stop `enclave serve`
(and workers) first: this command opens the embedded index exclusively, so no write can slip between
the database copy and the index copy; while serve runs, use POST /v1/admin/backups.
"""


def backup(
    target: Annotated[
        str, typer.Argument(metavar="DEST | verify SRC | key FILE | reapply-ledger", help="archive to write")
    ],
    path: Annotated[Path | None, typer.Argument(metavar="[SRC|FILE]", show_default=False)] = None,
) -> None:
    if target in ("verify", "key"):
        if path is None:
            raise typer.BadParameter(f"`enclave backup {target}` needs a path", param_hint="SRC")
        (verify if target == "verify" else new_key)(path)
        return
    if target == "reapply-ledger":
        if path is not None:
            raise typer.BadParameter("`enclave backup reapply-ledger` takes no path", param_hint="SRC")
        _run(reapply)
        return
    if path is not None:
        raise typer.BadParameter("give one DEST", param_hint="DEST")
    _run(lambda: _backup(Path(target)))


def _backup(dest: Path) -> None:
    settings = get_settings()
    refuse_inside_data_dir(settings, dest)
    report = take_backup(settings, dest, backup_key(settings))
    out.print(
        f"wrote {report.path}: {report.archive_bytes / 1e6:.1f} MB ({report.members} members, {report.documents} "
        f"documents, {report.index_points} index points) in {report.seconds:.1f} s; writes were paused "
        f"{report.pause_s * 1000:.0f} ms"
    )


def reapply() -> None:
    """Re-apply every erasure in the ledger to this site through its configured index (any backend)."""
    settings = get_settings()
    components = build_components(settings, warm_parser=False)  # parses nothing: no parser process
    try:
        report = reapply_ledger(settings, components.index)
    finally:
        components.close()
    out.print(
        f"re-applied {report.erasures_reapplied} erasure(s) ({len(report.documents_erased)} documents still held "
        f"by the restored store) in {report.seconds:.1f} s; audit record #{report.audit_seq}"
    )


def verify(src: Path) -> None:
    """Check every frame and every member's SHA-256 against the manifest, without restoring."""

    def run() -> None:
        manifest = verify_archive(src, backup_key(get_settings()))
        out.print(
            f"{src} is intact: {len(manifest['members'])} members match the manifest; taken "
            f"{manifest['created_at']} of a {manifest.get('database', 'sqlite')} store, {manifest['documents']} "
            f"documents, {manifest['index']['points']} index points"
        )

    _run(run)


def new_key(path: Path) -> None:
    """Create a backup key file (0600). Keep it, and a copy offline, away from the data directory and archives."""
    try:
        write_key_file(path)
    except FileExistsError as exc:
        err.print(f"error: {path} exists; a backup key is never overwritten (archives sealed under it need it)")
        raise typer.Exit(2) from exc
    out.print(f"created {path}; set ENCLAVE_BACKUP__KEY_FILE={path}")


def restore(
    src: Annotated[Path, typer.Argument(help="archive written by enclave backup")],
    accept_audit_gap: Annotated[
        bool,
        typer.Option(
            "--accept-audit-gap",
            help="restore a backup older than the newest audit anchor; the lost record range is recorded and anchored",
        ),
    ] = False,
) -> None:
    """Restore an archive into an empty data directory, re-apply the erasure ledger, and audit the restore.

    The master key file is not in the archive: put the site's key at ENCLAVE_COMPLIANCE__MASTER_KEY_FILE first.
    """

    def run() -> None:
        settings = get_settings()
        report = run_restore(settings, src, backup_key(settings), accept_audit_gap=accept_audit_gap)
        if report.audit_gap is not None:
            gap = report.audit_gap
            out.print(
                f"audit records {gap['restored_head_seq'] + 1}-{gap['anchored_seq']} (anchored {gap['anchored_time']}) "
                "are not in this backup: the restore record states the gap and a signed rebase anchor was appended"
            )
        out.print(
            f"restored {report.documents} documents and {report.index_points} index points (backup of "
            f"{report.created_at}) in {report.seconds:.1f} s; re-applied {report.erasures_reapplied} erasure(s) "
            f"({len(report.documents_erased)} documents); audit record #{report.audit_seq}"
        )

    _run(run)


def _run(action: Callable[[], None]) -> None:
    try:
        action()
    except EnclaveError as exc:
        err.print(f"error: {exc.message}")
        raise typer.Exit(2) from exc

"""``enclave audit …``, ``enclave kms rotate`` and ``enclave retention run``.

The audit and key commands open only the relational store and the key file (no index, no models),
so they run while ``enclave serve`` is up. ``retention run`` needs the index too, so it runs when
the service is stopped; the service runs the same thing on its own schedule.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ingest.audit.trail import Actor, AuditEvent
from ingest.compliance import Compliance, build_compliance
from ingest.config import Settings
from ingest.store.db import create_schema, make_engine

audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail: verify, checkpoint, export.")
kms_app = typer.Typer(no_args_is_help=True, help="Master key management (envelope encryption).")
retention_app = typer.Typer(
    no_args_is_help=True, help="Retention periods and legal holds from policies/retention.json."
)
out = Console()
err = Console(stderr=True)


def _compliance(settings: Settings) -> Compliance:
    from ingest.redaction.presidio_detector import PresidioDetector

    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return build_compliance(settings, engine, PresidioDetector())  # the detector stays cold: never loaded here


def _settings() -> Settings:
    from service.cli import _settings as configured

    return configured()


def _checkpoints(paths: list[Path]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.append(json.loads(line))
    return found


@audit_app.command("verify")
def verify(
    checkpoint: Annotated[
        list[Path] | None, typer.Option(help="checkpoint file(s) from `enclave audit checkpoint`")
    ] = None,
) -> None:
    """Walk the chain and hold it against the latest anchor (ENCLAVE_AUDIT__ANCHOR_FILE) and any checkpoints;
    exit 1 naming the first broken record (altered, deleted, reordered, inserted, truncated)."""
    result = _compliance(_settings()).audit.verify(_checkpoints(checkpoint or []))
    if result.ok:
        anchored = (
            f"matches the anchor of {result.anchor.time} (record {result.anchor.seq})"
            if result.anchor
            else "not anchored: a cut tail shows only against a checkpoint (set ENCLAVE_AUDIT__ANCHOR_FILE)"
        )
        out.print(f"audit chain OK: {result.records} records, head {result.head_hash[:16]}…, {anchored}")
        raise typer.Exit(0)
    where = "" if result.first_broken_seq is None else f" at record {result.first_broken_seq}"
    err.print(f"audit chain BROKEN{where}: {result.problem}")
    raise typer.Exit(1)


@audit_app.command("checkpoint")
def checkpoint(
    output: Annotated[
        Path | None, typer.Option("--out", help="append the checkpoint to this file (JSON lines)")
    ] = None,
) -> None:
    """Print (or append to a file) a signed checkpoint: head hash and count. Keep it outside the data directory."""
    line = json.dumps(_compliance(_settings()).audit.checkpoint(), sort_keys=True)
    if output is None:
        sys.stdout.write(line + "\n")
        return
    with output.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    err.print(f"checkpoint appended to {output}")


@audit_app.command("export")
def export(
    since: Annotated[str | None, typer.Option(help="only records at or after this ISO-8601 time")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="write here instead of stdout")] = None,
) -> None:
    """JSON lines for a SIEM: every stored column (hashes included, query text only encrypted)."""
    from ingest.audit.trail import export_line
    from service.compliance.routes import _iso

    records = _compliance(_settings()).audit.records(since=_iso(since, "since"))
    handle = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        for record in records:
            handle.write(export_line(record) + "\n")
    finally:
        if output:
            handle.close()


@kms_app.command("rotate")
def rotate(
    keep_old: Annotated[bool, typer.Option(help="keep the previous master key version in the key file")] = False,
) -> None:
    """New master key version; re-wrap every tenant and audit key under it (no data is re-encrypted)."""
    settings = _settings()
    compliance = _compliance(settings)
    report = compliance.keyring.rotate_master(retire_old=not keep_old)
    compliance.audit.record(
        AuditEvent(
            Actor.system(settings.default_tenant, "kms"),
            "keys.master_rotated",
            detail={
                "previous": report.previous_version,
                "new": report.new_version,
                "rewrapped": report.rewrapped,
                "retired": report.retired,
            },
        )
    )
    out.print(
        f"master key rotated {report.previous_version} → {report.new_version}: "
        f"{report.rewrapped} keys re-wrapped, retired: {', '.join(report.retired) or 'none'}"
    )


@retention_app.command("run")
def run() -> None:
    """Erase every document past its retention period unless a legal hold covers it (each one audited)."""
    from ingest.retention import run_retention
    from ingest.runtime import build_components

    components = build_components(_settings())
    try:
        report = run_retention(components)
    finally:
        components.close()
    out.print(f"checked {report.checked} documents: {len(report.receipts)} erased, {len(report.held)} held")
    for receipt in report.receipts:
        out.print(f"  erased {receipt.target} (receipt {receipt.receipt_id}, audit record {receipt.audit_seq})")
    for document_id, hold in report.held.items():
        out.print(f"  held {document_id} by {hold}")

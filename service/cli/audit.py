"""``enclave audit verify|checkpoint|export``: the tamper-evident audit trail.

These commands open only the relational store and the key file (no index, no models), so they run
while ``enclave serve`` is up.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ingest.audit.trail import export_line
from service.cli.shared import configured_settings, open_compliance
from service.jsontypes import audit_time

audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail: verify, checkpoint, export.")
out = Console()
err = Console(stderr=True)


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
    result = open_compliance(configured_settings()).audit.verify(_checkpoints(checkpoint or []))
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
    line = json.dumps(open_compliance(configured_settings()).audit.checkpoint(), sort_keys=True)
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
    records = open_compliance(configured_settings()).audit.records(since=audit_time(since, "since"))
    handle = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        for record in records:
            handle.write(export_line(record) + "\n")
    finally:
        if output:
            handle.close()

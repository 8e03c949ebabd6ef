"""``enclave kms rotate``: a new master key version (envelope encryption); runs while ``enclave serve`` is up."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from ingest.audit.trail import Actor, AuditEvent
from service.cli.shared import configured_settings, open_compliance

kms_app = typer.Typer(no_args_is_help=True, help="Master key management (envelope encryption).")
out = Console()


@kms_app.command("rotate")
def rotate(
    keep_old: Annotated[bool, typer.Option(help="keep the previous master key version in the key file")] = False,
) -> None:
    """New master key version; re-wrap every tenant and audit key under it (no data is re-encrypted)."""
    settings = configured_settings()
    compliance = open_compliance(settings)
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

"""``enclave retention run``: erase what is past its retention period.

It needs the index too, so it runs when the service is stopped; the service runs the same thing on its
own schedule.
"""

from __future__ import annotations

import typer
from rich.console import Console

from ingest.retention import run_retention
from ingest.runtime import build_components
from service.cli.shared import configured_settings

retention_app = typer.Typer(
    no_args_is_help=True, help="Retention periods and legal holds from policies/retention.json."
)
out = Console()


@retention_app.command("run")
def run() -> None:
    """Erase every document past its retention period unless a legal hold covers it (each one audited)."""
    components = build_components(configured_settings(), warm_parser=False)  # parses nothing: no parser process
    try:
        report = run_retention(components)
    finally:
        components.close()
    out.print(f"checked {report.checked} documents: {len(report.receipts)} erased, {len(report.held)} held")
    for receipt in report.receipts:
        out.print(f"  erased {receipt.target} (receipt {receipt.receipt_id}, audit record {receipt.audit_seq})")
    for document_id, hold in report.held.items():
        out.print(f"  held {document_id} by {hold}")

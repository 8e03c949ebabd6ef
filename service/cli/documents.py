"""``enclave ingest``, ``enclave status`` and ``enclave worker``: documents in, and where they stand.

``ingest`` and ``status`` open the local data directory, or call a running server with ``--url``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ingest.errors import EnclaveError
from ingest.runtime import build_components
from ingest.worker import run_worker, stop_on_signals
from service.cli import remote
from service.cli.ingesting import ingest_files, status_table
from service.cli.shared import configured_settings, files_under

out = Console()
err = Console(stderr=True)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders")],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="descend into sub-folders")] = False,
    collection: Annotated[str | None, typer.Option(help="collection to ingest into")] = None,
    classification: Annotated[str, typer.Option(help="public, internal, confidential, phi or privileged")] = "internal",
) -> None:
    """Ingest documents with a progress bar; exits non-zero when any file failed."""
    settings = configured_settings()
    files = files_under(paths, recursive)
    if remote.REMOTE.url:
        results = remote.ingest_files(remote.REMOTE, files, collection, classification, Progress(console=err))
    else:
        components = build_components(settings, warm_parser=False)  # a folder of .txt needs no unstructured
        try:
            results = ingest_files(
                components, files, collection or settings.default_collection, classification, Progress(console=err)
            )
        finally:
            components.close()
    table = Table("file", "result", "chunks", "reason")
    for result in results:
        table.add_row(str(result.path), result.outcome, str(result.chunks), result.reason or "")
    out.print(table)
    failed = sum(r.outcome == "failed" for r in results)
    skipped = sum(r.outcome == "skipped" for r in results)
    out.print(f"{len(results) - failed - skipped} ok, {skipped} skipped, {failed} failed")
    raise typer.Exit(1 if failed else 0)


def worker(
    until_empty: Annotated[bool, typer.Option("--until-empty", help="exit once no job is queued or running")] = False,
    poll: Annotated[float, typer.Option(help="seconds between looks at an empty queue")] = 1.0,
) -> None:
    """Run ingest jobs from the shared queue until stopped (SIGTERM/Ctrl-C finish the current documents first)."""
    try:
        components = build_components(configured_settings())
    except EnclaveError as exc:  # e.g. the embedded index is open in `enclave serve`, which runs jobs itself
        err.print(f"enclave worker cannot start: {exc.message}")
        raise typer.Exit(2) from exc
    try:
        with stop_on_signals() as stop:
            processed = run_worker(components, until_empty=until_empty, poll_s=poll, stop=stop)
    finally:
        components.close()
    err.print(f"worker stopped after {processed} job(s)")


def status() -> None:
    """Documents, chunks, jobs and the components in use."""
    out.print(remote.status_table(remote.REMOTE) if remote.REMOTE.url else status_table(configured_settings()))

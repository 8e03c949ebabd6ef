"""``enclave eval``: retrieval scored on a data set, ingested once into an isolated index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ingest.errors import EnclaveError
from service.cli.shared import configured_settings
from service.evaluation.report import progress_bar, run_eval, table

out = Console()
err = Console(stderr=True)


def evaluate(
    dataset_dir: Annotated[Path, typer.Argument(help="a BEIR (corpus.jsonl) or span (contracts/) data set")],
    split: Annotated[str, typer.Option(help="queries-SPLIT.jsonl and its judgments")] = "test",
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25")] = "hybrid",
    k: Annotated[int, typer.Option(help="cut-off for the @k metrics (the @10 ones are always reported)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
) -> None:
    """Score retrieval on a data set, ingested once into an isolated index under the data directory."""
    if mode not in ("hybrid", "dense", "bm25"):
        raise typer.BadParameter("choose hybrid, dense or bm25", param_hint="--mode")
    try:
        report = run_eval(configured_settings(), dataset_dir, split, mode, k, progress_bar(err))  # type: ignore[arg-type]
    except EnclaveError as exc:
        err.print(f"error: {exc.message}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(report))
    else:
        out.print(table(report))

"""The ``enclave`` command line: ingest, ask, serve, status, up, eval, export-model."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ingest.config import Settings, get_settings
from service.auth.cli import keys_app, policy_app
from service.backup_cli import BACKUP_HELP, backup, restore
from service.compliance.cli import audit_app, kms_app, retention_app
from service.db_cli import db_app
from service.index_cli import index_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Enclave: cited answers from your own documents.")
app.add_typer(audit_app, name="audit")
app.add_typer(kms_app, name="kms")
app.add_typer(retention_app, name="retention")
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")
app.add_typer(db_app, name="db")
app.add_typer(index_app, name="index")
app.command(name="backup", help=BACKUP_HELP)(backup)
app.command(name="restore")(restore)
out = Console()
err = Console(stderr=True)
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _settings() -> Settings:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from service.observability.logs import configure_logging
    from service.observability.tracing import configure_tracing

    settings = get_settings()
    configure_logging(settings)
    configure_tracing(settings)
    return settings


@app.callback()
def remote_mode(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar="ENCLAVE_URL", help="a running Enclave server for ask, ingest and status"),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="ENCLAVE_API_KEY", help="API key for --url")
    ] = None,
) -> None:
    """Without --url, commands open the local data directory; with it, ask/ingest/status call that server."""
    from service.remote_cli import REMOTE, REMOTE_COMMANDS

    if url and ctx.invoked_subcommand not in REMOTE_COMMANDS:
        if getattr(ctx.get_parameter_source("url"), "name", None) != "COMMANDLINE":
            url = None  # an exported ENCLAVE_URL (for remote asks) must not break local admin commands
        else:
            raise typer.BadParameter(f"--url works with {', '.join(sorted(REMOTE_COMMANDS))}", param_hint="--url")
    REMOTE.url, REMOTE.api_key = url, api_key


def _files(paths: list[Path], recursive: bool) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            pattern = path.rglob("*") if recursive else path.glob("*")
            found.extend(sorted(p for p in pattern if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            found.append(path)
        else:
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    return found


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="files or folders")],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="descend into sub-folders")] = False,
    collection: Annotated[str | None, typer.Option(help="collection to ingest into")] = None,
    classification: Annotated[str, typer.Option(help="public, internal, confidential, phi or privileged")] = "internal",
) -> None:
    """Ingest documents with a progress bar; exits non-zero when any file failed."""
    from ingest.runtime import build_components
    from service import remote_cli
    from service.ingest_cli import ingest_files

    settings = _settings()
    files = _files(paths, recursive)
    if remote_cli.REMOTE.url:
        results = remote_cli.ingest_files(remote_cli.REMOTE, files, collection, classification, Progress(console=err))
    else:
        components = build_components(settings)
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


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="your question")],
    k: Annotated[int | None, typer.Option(help="sources to give the model")] = None,
) -> None:
    """Answer a question from the ingested documents and print the citations."""
    from service import remote_cli
    from service.auth import Principal
    from service.auth.actor import actor_of
    from service.compliance.context import RequestAudit
    from service.context import build_state
    from service.schemas import QueryRequest

    settings = _settings()
    if remote_cli.REMOTE.url:
        response = remote_cli.ask(remote_cli.REMOTE, question, k)
    else:
        state = build_state(settings, start_worker=False)
        try:
            principal = Principal(tenant=settings.default_tenant, subject="cli", roles=("admin",), auth_method="local")
            audit = RequestAudit(state, actor_of(principal))
            response = state.answerer.audited(principal, QueryRequest(query=question, k=k), audit)
        finally:
            state.close()
    out.print(response.answer)
    removed = response.unsupported_removed
    out.print(f"  ({response.grounding}" + (f", {removed} unsupported sentence(s) removed)" if removed else ")"))
    for c in response.citations:
        page = f" p. {c.page}" if c.page else ""
        flag = "" if c.cited else " (supplied, not cited)"
        out.print(f"  [{c.marker}] {c.title}{page} chars {c.start}-{c.end}{flag}: {c.snippet[:120]!r}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="port to bind")] = None,
) -> None:
    """Run the API and the web page."""
    import uvicorn

    from service.app import create_app
    from service.auth.cli import prepare_serving
    from service.proxies import UVICORN_OPTIONS

    settings = _settings()
    prepare_serving(settings)  # production without identity stops here; dev mode prints where its key is
    bind_host, bind_port = host or settings.host, port or settings.port
    err.print(
        f"Enclave is starting (data in {settings.data_dir.resolve()}); it will listen on http://{bind_host}:{bind_port}"
    )
    # log_config=None: uvicorn's records go through Enclave's root handler (ENCLAVE_LOG_FORMAT)
    # proxy_headers off: X-Forwarded-For is believed only from ENCLAVE_API__TRUSTED_PROXIES (service.proxies)
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_level="warning",
        log_config=None,
        proxy_headers=UVICORN_OPTIONS["proxy_headers"],
    )


@app.command()
def worker(
    until_empty: Annotated[bool, typer.Option("--until-empty", help="exit once no job is queued or running")] = False,
    poll: Annotated[float, typer.Option(help="seconds between looks at an empty queue")] = 1.0,
) -> None:
    """Run ingest jobs from the shared queue until stopped (SIGTERM/Ctrl-C finish the current documents first)."""
    from ingest.errors import EnclaveError
    from ingest.runtime import build_components
    from ingest.worker import run_worker, stop_on_signals

    try:
        components = build_components(_settings())
    except EnclaveError as exc:  # e.g. the embedded index is open in `enclave serve`, which runs jobs itself
        err.print(f"enclave worker cannot start: {exc.message}")
        raise typer.Exit(2) from exc
    try:
        with stop_on_signals() as stop:
            processed = run_worker(components, until_empty=until_empty, poll_s=poll, stop=stop)
    finally:
        components.close()
    err.print(f"worker stopped after {processed} job(s)")


@app.command()
def status() -> None:
    """Documents, chunks, jobs and the components in use."""
    from service import remote_cli
    from service.ingest_cli import status_table

    out.print(remote_cli.status_table(remote_cli.REMOTE) if remote_cli.REMOTE.url else status_table(_settings()))


@app.command()
def up(host: Annotated[str | None, typer.Option()] = None, port: Annotated[int | None, typer.Option()] = None) -> None:
    """Ingest the bundled sample documents, then serve (what the README's first command runs)."""
    from ingest.runtime import build_components
    from service.ingest_cli import ingest_files

    settings = _settings()
    components = build_components(settings)
    try:
        files = _files([SAMPLES], True)
        ingest_files(components, files, settings.default_collection, "internal", Progress(console=err))
    finally:
        components.close()
    serve(host, port)


@app.command(name="export-model")
def export_model(
    models_dir: Annotated[Path | None, typer.Option(help="parent folder (default: <data dir>/models)")] = None,
) -> None:
    """Convert the packaged SmolLM2 GGUF to a Hugging Face folder for vLLM (once); prints its path."""
    from ingest.errors import EnclaveError
    from service.generation.hf_model import hf_model_dir

    try:
        print(hf_model_dir(models_dir or _settings().data_dir / "models"))
    except EnclaveError as exc:
        err.print(f"error: {exc.message}")
        raise typer.Exit(2) from exc


@app.command(name="eval")
def evaluate(
    dataset_dir: Annotated[Path, typer.Argument(help="a BEIR (corpus.jsonl) or span (contracts/) data set")],
    split: Annotated[str, typer.Option(help="queries-SPLIT.jsonl and its judgments")] = "test",
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25")] = "hybrid",
    k: Annotated[int, typer.Option(help="cut-off for the @k metrics (the @10 ones are always reported)")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
) -> None:
    """Score retrieval on a data set, ingested once into an isolated index under the data directory."""
    import json

    from ingest.errors import EnclaveError
    from service.evaluation.report import progress_bar, run_eval, table

    if mode not in ("hybrid", "dense", "bm25"):
        raise typer.BadParameter("choose hybrid, dense or bm25", param_hint="--mode")
    try:
        report = run_eval(_settings(), dataset_dir, split, mode, k, progress_bar(err))  # type: ignore[arg-type]
    except EnclaveError as exc:
        err.print(f"error: {exc.message}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(report))
    else:
        out.print(table(report))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

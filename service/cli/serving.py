"""``enclave serve``, ``enclave up`` and ``enclave export-model``; what ``serve`` checks and says before it binds."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from ingest.config import Settings
from ingest.errors import EnclaveError
from ingest.placement import check_placement
from ingest.runtime import build_components
from service.cli.ingesting import ingest_files
from service.cli.shared import configured_settings, files_under, store_engine

err = Console(stderr=True)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def serve(
    host: Annotated[str | None, typer.Option(help="address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="port to bind")] = None,
) -> None:
    """Run the API and the web page."""
    import uvicorn  # lazy: the web server (uvicorn, FastAPI, the routes) is for `serve` and `up` only

    from service.app import create_app  # lazy: as above
    from service.proxies import UVICORN_OPTIONS  # lazy: as above

    settings = configured_settings()
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


def up(host: Annotated[str | None, typer.Option()] = None, port: Annotated[int | None, typer.Option()] = None) -> None:
    """Ingest the bundled sample documents, then serve (what the README's first command runs)."""
    settings = configured_settings()
    components = build_components(settings)
    try:
        files = files_under([SAMPLES], True)
        ingest_files(components, files, settings.default_collection, "internal", Progress(console=err))
    finally:
        components.close()
    serve(host, port)


def export_model(
    models_dir: Annotated[Path | None, typer.Option(help="parent folder (default: <data dir>/models)")] = None,
) -> None:
    """Convert the packaged SmolLM2 GGUF to a Hugging Face folder for vLLM (once); prints its path."""
    from service.generation.hf_model import hf_model_dir  # lazy: for `export-model` only

    try:
        print(hf_model_dir(models_dir or configured_settings().data_dir / "models"))
    except EnclaveError as exc:
        err.print(f"error: {exc.message}")
        raise typer.Exit(2) from exc


def prepare_serving(settings: Settings) -> None:
    """Before ``serve`` binds: refuse a production site without identity, with its master key in the data directory
    or without audit anchors; announce the dev key, reload on SIGHUP.

    :raises typer.Exit: production mode with no identity provider and no API key, or keys and anchors misplaced.
    """
    from service.auth.authenticator import build_authenticator  # lazy: auth pulls in FastAPI; `serve` only
    from service.auth.dev_key import announcement, dev_key  # lazy: as above
    from service.policy.regopy_engine import request_reload  # lazy: as above

    try:
        check_placement(settings, serving=True)
        build_authenticator(settings, store_engine(settings))
    except EnclaveError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    key = dev_key(settings)
    if key is not None:
        err.print(announcement(key))
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda _signum, _frame: request_reload())

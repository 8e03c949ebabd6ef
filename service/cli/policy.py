"""``enclave policy check|reload``: the access policy in ``policies/*.rego``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from ingest.policy_data import policies_dir
from service.cli.shared import configured_settings

policy_app = typer.Typer(no_args_is_help=True, help="The access policy in policies/*.rego: check, reload.")
err = Console(stderr=True)


@policy_app.command("check")
def check(
    directory: Annotated[Path | None, typer.Argument(help="default: ENCLAVE_COMPLIANCE__POLICIES_DIR")] = None,
) -> None:
    """Compile the access policy as the service would; exits 1 with file:line:column when it does not compile."""
    from service.policy.regopy_engine import RegoPolicyEngine  # lazy: the Rego engine is for `policy check` only

    engine = RegoPolicyEngine(directory or policies_dir(configured_settings()), check_interval_s=0)
    status = engine.reload()
    if status.last_error is not None or status.revision is None:
        err.print(f"[red]policy does not compile:[/red] {status.last_error}")
        raise typer.Exit(1)
    err.print(f"policy ok: revision {status.revision[:12]} from {', '.join(status.files)}")


@policy_app.command("reload")
def reload(
    url: Annotated[str | None, typer.Option(help="the server (default: http://ENCLAVE_HOST:ENCLAVE_PORT)")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="ENCLAVE_API_KEY", help="an admin key (dev: dev key)")] = None,
) -> None:
    """Tell a running server to recompile its policy now (``kill -HUP <pid>`` does the same)."""
    from service.auth.dev_key import dev_key  # lazy: service.auth pulls in FastAPI, which other commands never need

    settings = configured_settings()
    key = api_key or (found.value if (found := dev_key(settings, create=False)) else "")
    target = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    response = httpx.post(f"{target}/v1/policy/reload", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    body = response.json()
    if response.status_code != 200 or body.get("last_error"):
        err.print(f"[red]reload failed ({response.status_code}):[/red] {body.get('last_error') or body.get('error')}")
        raise typer.Exit(1)
    err.print(f"policy reloaded: revision {str(body['revision'])[:12]}")

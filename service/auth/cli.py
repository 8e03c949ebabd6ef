"""``enclave keys create|list|revoke`` and ``enclave policy check|reload``; what ``serve`` says about identity.

The key commands open only the relational store, so they work while ``enclave serve`` runs, and
before the first start of a production site (to create its first admin key). ``keys create``
prints the new key and nothing else on stdout, so scripts can capture it.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from ingest.config import Settings
from ingest.errors import EnclaveError
from ingest.store.db import create_schema, make_engine

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create (shown once), list, revoke.")
policy_app = typer.Typer(no_args_is_help=True, help="The access policy in policies/*.rego: check, reload.")
err = Console(stderr=True)


def _settings() -> Settings:
    from service.cli import _settings as configured

    return configured()


def _engine(settings: Settings) -> Engine:
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return engine


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@keys_app.command("create")
def create(
    tenant: Annotated[str | None, typer.Option(help="the key's tenant (default: ENCLAVE_DEFAULT_TENANT)")] = None,
    roles: Annotated[str, typer.Option(help="comma-separated: reader, contributor, auditor, admin")] = "reader",
    groups: Annotated[str | None, typer.Option(help="comma-separated ACL groups, e.g. legal,matter:A")] = None,
    name: Annotated[str | None, typer.Option(help="what the key is for")] = None,
    expires_days: Annotated[float | None, typer.Option(help="days until it stops working")] = None,
) -> None:
    """Create an API key and print it (only it) on stdout; it is stored hashed and never shown again."""
    from service.auth import api_keys

    settings = _settings()
    try:
        created = api_keys.create_key(
            _engine(settings),
            tenant or settings.default_tenant,
            _split(roles),
            name=name,
            groups=_split(groups),
            expires_days=expires_days,
            created_by="cli",
        )
    except EnclaveError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    record = created.record
    err.print(f"created key {record.id} for tenant {record.tenant} roles={','.join(record.roles)}")
    typer.echo(created.key)


@keys_app.command("list")
def list_(tenant: Annotated[str | None, typer.Option(help="only this tenant's keys")] = None) -> None:
    """Every key (id, tenant, name, roles, groups, expiry, revocation); never the keys themselves."""
    from service.auth import api_keys

    table = Table("id", "tenant", "name", "roles", "groups", "created", "expires", "revoked", "active")
    for k in api_keys.list_keys(_engine(_settings()), tenant):
        table.add_row(
            k.id,
            k.tenant,
            k.name,
            ",".join(k.roles),
            ",".join(k.groups),
            _when(k.created_at),
            _when(k.expires_at),
            _when(k.revoked_at),
            "yes" if api_keys.is_active(k) else "no",
        )
    Console().print(table)


def _when(moment: object) -> str:
    return str(moment)[:19] if moment else ""


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the id `enclave keys list` shows")]) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    from service.auth import api_keys

    try:
        api_keys.revoke_key(_engine(_settings()), key_id)
    except EnclaveError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    err.print(f"revoked {key_id}")


@policy_app.command("check")
def check(
    directory: Annotated[Path | None, typer.Argument(help="default: ENCLAVE_COMPLIANCE__POLICIES_DIR")] = None,
) -> None:
    """Compile the access policy as the service would; exits 1 with file:line:column when it does not compile."""
    from ingest.policy_data import policies_dir
    from service.policy.regopy_engine import RegoPolicyEngine

    engine = RegoPolicyEngine(directory or policies_dir(_settings()), check_interval_s=0)
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
    import httpx

    from service.auth.dev_key import dev_key

    settings = _settings()
    key = api_key or (found.value if (found := dev_key(settings, create=False)) else "")
    target = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
    response = httpx.post(f"{target}/v1/policy/reload", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    body = response.json()
    if response.status_code != 200 or body.get("last_error"):
        err.print(f"[red]reload failed ({response.status_code}):[/red] {body.get('last_error') or body.get('error')}")
        raise typer.Exit(1)
    err.print(f"policy reloaded: revision {str(body['revision'])[:12]}")


def prepare_serving(settings: Settings) -> None:
    """Before ``serve`` binds: refuse a production site without identity, with its master key in the data directory
    or without audit anchors; announce the dev key, reload on SIGHUP.

    :raises typer.Exit: production mode with no identity provider and no API key, or keys and anchors misplaced.
    """
    from ingest.placement import check_placement
    from service.auth.authenticator import build_authenticator
    from service.auth.dev_key import announcement, dev_key
    from service.policy.regopy_engine import request_reload

    try:
        check_placement(settings, serving=True)
        build_authenticator(settings, _engine(settings))
    except EnclaveError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from None
    key = dev_key(settings)
    if key is not None:
        err.print(announcement(key))
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda _signum, _frame: request_reload())

"""``enclave keys create|list|revoke``: API keys.

The key commands open only the relational store, so they work while ``enclave serve`` runs, and
before the first start of a production site (to create its first admin key). ``keys create``
prints the new key and nothing else on stdout, so scripts can capture it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ingest.errors import EnclaveError
from service.cli.shared import configured_settings, store_engine

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create (shown once), list, revoke.")
err = Console(stderr=True)


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
    from service.auth import api_keys  # lazy: the service.auth package loads FastAPI, which only `serve` needs

    settings = configured_settings()
    try:
        created = api_keys.create_key(
            store_engine(settings),
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
    from service.auth import api_keys  # lazy: as in create

    table = Table("id", "tenant", "name", "roles", "groups", "created", "expires", "revoked", "active")
    for k in api_keys.list_keys(store_engine(configured_settings()), tenant):
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
    from service.auth import api_keys  # lazy: as in create

    try:
        api_keys.revoke_key(store_engine(configured_settings()), key_id)
    except EnclaveError as exc:
        err.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    err.print(f"revoked {key_id}")

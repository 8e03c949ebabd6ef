"""``enclave db …``: the relational store's schema (Alembic migrations; see ingest/store/migrate.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.engine import Engine

from ingest.config import get_settings
from ingest.store import migrate
from ingest.store.db import make_engine
from ingest.store.revisions import autogenerate

db_app = typer.Typer(no_args_is_help=True, help="Database schema: upgrade, inspect, generate migrations.")
out = Console()
err = Console(stderr=True)


def _engine() -> Engine:
    settings = get_settings()
    settings.ensure_dirs()  # the embedded SQLite lives in the data directory
    return make_engine(settings.resolved_database_url)


@db_app.command()
def upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Migrate the database (ENCLAVE_DATABASE_URL) to this Enclave's schema: before the first start, after upgrades."""
    engine = _engine()
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine, revision)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    out.print(
        f"{where}: schema {before or 'empty'} -> {after}" + (" (head)" if after == migrate.head_revision() else "")
    )


@db_app.command()
def current() -> None:
    """Print the database's schema revision and the one this Enclave needs; exits 1 when they differ."""
    engine = _engine()
    try:
        now, head = migrate.current_revision(engine), migrate.head_revision()
    finally:
        engine.dispose()
    out.print(f"database: {now or 'empty'}\nthis Enclave: {head}")
    raise typer.Exit(0 if now == head else 1)


@db_app.command()
def downgrade(revision: Annotated[str, typer.Argument(help="target revision, or 'base' to drop every table")]) -> None:
    """Migrate back to an earlier revision (destructive: back up first)."""
    engine = _engine()
    try:
        migrate.downgrade(engine, revision)
    finally:
        engine.dispose()
    out.print(f"schema now at {revision}")


@db_app.command()
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="what the migration changes")],
    url: Annotated[str | None, typer.Option(help="compare against this database (default: a scratch SQLite)")] = None,
) -> None:
    """Developers: write a migration for what the models have and the migrations lack; review and commit it."""
    path = autogenerate(message, url)
    out.print(f"wrote {path}; review it (renames, data moves and PostgreSQL types are not guessed) and commit it")

"""Schema migrations of the relational store (Alembic, driven from code; no ``alembic.ini``).

The revisions live in ``ingest/store/migrations/versions`` and are generated from the SQLModel
models (:func:`ingest.store.revisions.autogenerate`, i.e. ``enclave db revision -m "…"``). A test upgrades an empty
SQLite and an empty PostgreSQL to head and demands no difference from the models, so a model
change without its migration fails CI.

Embedded SQLite needs no step: :func:`ensure_schema` creates a fresh database from the models and
stamps it, or upgrades an older one in place. PostgreSQL is shared by replicas, so starting the
service only checks the revision; the operator (or a Helm hook) runs ``enclave db upgrade``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from ingest.errors import ServiceUnavailable
from ingest.store import compliance_models, models  # noqa: F401  (the tables the schema is compared with)

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


class SchemaOutOfDate(ServiceUnavailable):
    """The database's schema revision is not the one this build was written for."""

    code = "schema_out_of_date"
    retryable = False


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for Enclave's migrations, bound to an open connection or a URL."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["url"] = url
    return config


def head_revision() -> str:
    """The revision this build needs (exactly one head; two heads mean unmerged parallel migrations)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found under {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is stamped with (``None``: never migrated)."""
    with engine.connect() as connection:
        return _revision_of(connection)


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _run(step: Callable[..., Any], engine: Engine, *args: Any, **kwargs: Any) -> None:
    with engine.begin() as connection:
        step(alembic_config(connection), *args, **kwargs)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate forward to ``revision`` (one transaction; on PostgreSQL under an advisory lock)."""
    _run(command.upgrade, engine, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate back to ``revision`` (``"base"`` drops every Enclave table)."""
    _run(command.downgrade, engine, revision)


def stamp(engine: Engine, revision: str = "head") -> None:
    """Record ``revision`` without running anything (a schema made from the models directly)."""
    _run(command.stamp, engine, revision)


def schema_diff(engine: Engine) -> list[Any]:
    """Differences between the database and the models (empty when they agree)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, SQLModel.metadata))


def ensure_schema(engine: Engine) -> None:
    """Make SQLite current silently; check that PostgreSQL is current.

    :raises SchemaOutOfDate: PostgreSQL (or another server database) not at this build's head.
    """
    if engine.dialect.name == "sqlite":
        _ensure_sqlite(engine)
        return
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(_out_of_date_message(engine, current, head))


def _ensure_sqlite(engine: Engine) -> None:
    head = head_revision()
    with engine.connect() as connection:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # two processes starting together: one decides
        current = _revision_of(connection)
        if current is None:  # a fresh database (or one from before migrations existed)
            SQLModel.metadata.create_all(connection)
            command.stamp(alembic_config(connection), "head")
        elif current != head:
            command.upgrade(alembic_config(connection), "head")
        connection.commit()


def _out_of_date_message(engine: Engine, current: str | None, head: str) -> str:
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        return (
            f"the database {where} has no Enclave schema yet: run `enclave db upgrade` once "
            "(with the same ENCLAVE_DATABASE_URL) before starting Enclave"
        )
    if not _is_known(current):
        return (
            f"the database {where} is at schema revision {current}, which this Enclave does not know "
            f"(a newer version migrated it); run that version, or downgrade the schema with it to {head}"
        )
    return (
        f"the database {where} is at schema revision {current}, this Enclave needs {head}: "
        "run `enclave db upgrade` (back up the database first)"
    )


def _is_known(revision: str) -> bool:
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except Exception:  # noqa: BLE001 - alembic raises several types for an unknown id
        return False
    return True

"""Alembic environment: the target is ``SQLModel.metadata`` with every Enclave table registered.

The database comes from the caller (``ingest.store.migrate`` passes an open connection or a URL)
or else from the settings (``ENCLAVE_DATABASE_URL``). On PostgreSQL the whole upgrade runs in one
transaction under an advisory lock, so two replicas or init jobs starting together migrate once.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from ingest.config import get_settings
from ingest.store import db  # registers every table on SQLModel.metadata

MIGRATION_LOCK = "enclave.schema-migration"
target_metadata = SQLModel.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )


def _migrate(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({db.advisory_key(MIGRATION_LOCK)})")
        context.run_migrations()


def _url() -> str:
    url = context.config.attributes.get("url")
    if url:
        return str(url)
    return get_settings().resolved_database_url


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = db.make_engine(_url())
    try:
        with engine.connect() as opened:
            _migrate(opened)
            opened.commit()
    finally:
        engine.dispose()


def run_offline() -> None:
    context.configure(url=db.postgres_driver_url(_url()), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

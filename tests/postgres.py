"""A real PostgreSQL for the tests: ``pgserver`` (PostgreSQL 16 from a wheel), one server per session.

Each test gets its own database, cloned from a template made once per session, so a store-facing
test on PostgreSQL costs a ``CREATE DATABASE … TEMPLATE`` (a few milliseconds) instead of a schema.
``ENCLAVE_TEST_STORES=sqlite`` runs the store-facing tests on SQLite only (a quick local loop).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import psycopg
from sqlmodel import SQLModel

from ingest.store.db import make_engine
from ingest.store.migrate import stamp

STORES = tuple(s for s in ("sqlite", "postgresql") if s in os.environ.get("ENCLAVE_TEST_STORES", "sqlite,postgresql"))
TEMPLATE = "enclave_template"


class PostgresCluster:
    """A throwaway PostgreSQL server under ``pgdata``; superuser ``postgres`` over a Unix socket."""

    def __init__(self) -> None:
        import pgserver

        # Not under pytest's basetemp: a concurrent pytest run prunes old basetemps, and the
        # server would lose its data directory mid-session. Short, too: the socket lives here.
        pgdata = Path(tempfile.mkdtemp(prefix="enclave-pg-"))
        self._server = pgserver.get_server(pgdata, cleanup_mode="delete")
        self._socket_dir = str(pgdata)
        self._template_ready = False
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):  # a throwaway server: speed over durability
            self.admin(f"ALTER SYSTEM SET {setting} = off")
        self.admin("SELECT pg_reload_conf()")

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@/{database}?host={self._socket_dir}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        with psycopg.connect(host=self._socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, *, migrated: bool) -> str:
        """A new empty database, or one with the current schema stamped at head (cloned from the template)."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        if not migrated:
            self.admin(f'CREATE DATABASE "{name}"')
            return name
        self._ensure_template()
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _ensure_template(self) -> None:
        if self._template_ready:
            return
        self.admin(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{TEMPLATE}"')
        engine = make_engine(self.url(TEMPLATE))
        try:
            # From the models, like a fresh SQLite: store tests exercise the store, while
            # tests/ingest/test_store.py holds the migrations to the models (one clear failure
            # there instead of every PostgreSQL test failing when a migration is missing).
            SQLModel.metadata.create_all(engine)
            stamp(engine, "head")
        finally:
            engine.dispose()
        self._template_ready = True

    def stop(self) -> None:
        self._server.cleanup()

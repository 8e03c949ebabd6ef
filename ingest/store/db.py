"""Engine and sessions for the relational store: SQLite by default, PostgreSQL (psycopg 3) at scale."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

from ingest.store import compliance_models, models  # noqa: F401  (registers the tables)
from ingest.store.migrate import ensure_schema


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, a busy timeout and foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(postgres_driver_url(url), pool_pre_ping=True)
    return engine


def postgres_driver_url(url: str) -> str:
    """``postgresql://…`` (what operators write) means the psycopg 3 driver Enclave ships with."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_schema(engine: Engine) -> None:
    """Make the schema ready for this build (idempotent).

    SQLite (embedded): created or migrated in place, no step for the operator. PostgreSQL: only
    checked, because replicas must not race to migrate a shared database.

    :raises SchemaOutOfDate: a PostgreSQL schema that is not at this build's revision
        (the message says to run ``enclave db upgrade``).
    """
    ensure_schema(engine)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit lock id for a name (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def advisory_xact_lock(session: Session | Connection, name: str) -> None:
    """Hold an exclusive lock named ``name`` until the session's transaction ends.

    PostgreSQL: ``pg_advisory_xact_lock`` (every process and replica on the database queues on it).
    SQLite: a no-op, because one writer at a time is already the database's own rule; a caller
    that must read-then-write atomically there starts with ``BEGIN IMMEDIATE`` instead.
    """
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(name)})


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

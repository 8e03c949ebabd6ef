"""PostgreSQL in a backup: a ``pg_dump`` of one exported snapshot, and a ``pg_restore`` into an empty database.

The cut: :func:`exported_snapshot` opens a REPEATABLE READ transaction and exports its snapshot while
index writes are excluded (the same lock under which the index is copied); ``pg_dump --snapshot``
then dumps exactly that state, after the lock is released, so searches wait for the index copy
only and not for the dump. The transaction stays open until the dump has finished (PostgreSQL
forgets an exported snapshot when its transaction ends).

The tools come from ``ENCLAVE_BACKUP__PG_BIN_DIR``, else the newest of the PostgreSQL binaries
shipped in the ``pgserver`` wheel and those on ``PATH`` (``pg_dump`` refuses a server newer than itself).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from ingest.config import Settings
from ingest.errors import ConfigurationError, EnclaveError
from ingest.store.compliance_models import AuditRecord
from ingest.store.db import make_engine, postgres_driver_url
from ingest.store.models import Document

PG_MEMBER = "data/enclave.pgdump"
TOOL_TIMEOUT_S = 6 * 3600


class PostgresToolFailed(EnclaveError):
    """``pg_dump`` or ``pg_restore`` exited with an error; the message carries its own."""

    code = "postgres_tool_failed"


@dataclass(frozen=True)
class Snapshot:
    name: str
    documents: int
    audit_head: tuple[int, str] | None = None  # (seq, hash) of the newest audit record in the snapshot


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres://"))


@contextmanager
def exported_snapshot(url: str) -> Iterator[Snapshot]:
    """Export a snapshot of the database (held until the block ends) and count its documents."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                name = str(connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
                documents = connection.exec_driver_sql(f"SELECT count(*) FROM {Document.__tablename__}").scalar_one()
                head = connection.exec_driver_sql(
                    f"SELECT seq, hash FROM {AuditRecord.__tablename__} ORDER BY seq DESC LIMIT 1"
                ).first()
                yield Snapshot(name, int(documents), (int(head[0]), str(head[1])) if head else None)
    finally:
        engine.dispose()


def dump(settings: Settings, snapshot: Snapshot, target: Path) -> Path:
    """``pg_dump`` (custom format) of ``snapshot`` into ``target``.

    :raises PostgresToolFailed: pg_dump failed (unreachable server, too old a pg_dump, …).
    """
    conninfo, env = libpq_target(settings.resolved_database_url)
    _run(settings, "pg_dump", ["--format=custom", f"--snapshot={snapshot.name}", f"--file={target}", conninfo], env)
    return target


def restore_dump(settings: Settings, source: Path) -> None:
    """``pg_restore`` ``source`` into the configured (empty) database, in one transaction: all of it or nothing.

    Objects are owned by the restoring user (``--no-owner``): the site's role need not exist under the
    same name on the server restored to.

    :raises PostgresToolFailed: pg_restore failed; the database was left as it was.
    """
    conninfo, env = libpq_target(settings.resolved_database_url)
    arguments = ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", f"--dbname={conninfo}"]
    _run(settings, "pg_restore", [*arguments, str(source)], env)


def enclave_tables(url: str) -> list[str]:
    """The Enclave tables (and migration stamp) the database already holds."""
    engine = make_engine(url)
    try:
        present = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    return sorted(present & (set(SQLModel.metadata.tables) | {"alembic_version"}))


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string for the tools, and their environment: the password travels in
    ``PGPASSWORD``, never on a command line that ``ps`` shows."""
    from psycopg.conninfo import make_conninfo  # lazy: psycopg, PostgreSQL sites only

    parsed = make_url(postgres_driver_url(url))
    keywords: dict[str, str] = {str(k): str(v) for k, v in parsed.query.items() if isinstance(v, str)}
    for keyword, value in (("host", parsed.host), ("port", parsed.port), ("user", parsed.username)):
        if value is not None:
            keywords.setdefault(keyword, str(value))
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return make_conninfo("", dbname=parsed.database or "", **keywords), env


def _run(settings: Settings, tool: str, arguments: list[str], env: dict[str, str]) -> None:
    executable = tool_path(settings, tool)
    done = subprocess.run(  # noqa: S603 - a fixed tool; the arguments are ours, passed without a shell
        [str(executable), *arguments], env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        said = done.stderr.strip()[-2000:] or f"exit status {done.returncode}"
        raise PostgresToolFailed(
            f"{tool} failed: {said} (check ENCLAVE_DATABASE_URL; {tool} must be at least the server's major "
            "version: point ENCLAVE_BACKUP__PG_BIN_DIR at a matching PostgreSQL bin directory)"
        )


def tool_path(settings: Settings, tool: str) -> Path:
    """Where ``tool`` (pg_dump, pg_restore) is: the configured directory, else the newest one found.

    :raises ConfigurationError: it is not in the configured directory, or nowhere.
    """
    configured = settings.backup.pg_bin_dir
    if configured is not None:
        if not (configured / tool).is_file():
            raise ConfigurationError(f"ENCLAVE_BACKUP__PG_BIN_DIR={configured} has no {tool}")
        return configured / tool
    found = [p for p in (_pgserver_bin() / tool, _on_path(tool)) if p is not None and p.is_file()]
    if not found:
        raise ConfigurationError(
            f"{tool} not found: install the PostgreSQL client tools, or set ENCLAVE_BACKUP__PG_BIN_DIR to their "
            "directory"
        )
    return max(found, key=_major_version)


def _pgserver_bin() -> Path:
    try:
        import pgserver  # lazy: pgserver is a test extra, looked for only when no pg_dump is on PATH
    except ImportError:
        return Path("/nonexistent")
    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def _on_path(tool: str) -> Path | None:
    where = shutil.which(tool)
    return Path(where) if where else None


def _major_version(executable: Path) -> int:
    done = subprocess.run(  # noqa: S603 - one of the candidates found above
        [str(executable), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r"\(PostgreSQL\) (\d+)", done.stdout)
    return int(match.group(1)) if match else -1

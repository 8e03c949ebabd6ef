"""Serialising chain appends across threads and processes.

Every appender reads the head and writes the next link; two appenders interleaving would fork
the chain. SQLite: an exclusive ``flock`` on a file beside the database (all processes that open
that database share it) plus ``BEGIN IMMEDIATE``, so the write lock is taken before the head is
read. PostgreSQL: a transaction-scoped advisory lock. As a last line of defence ``seq`` is the
primary key, so a fork could never commit anyway.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Connection, Engine

from ingest.store.db import advisory_xact_lock

LOCK_NAME = "enclave.audit-chain"


class ChainLock:
    """Hold :meth:`process` around an audited transaction and call :meth:`begin` first inside it."""

    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect.name
        self._thread_lock = threading.Lock()
        database = engine.url.database
        on_disk = self._dialect == "sqlite" and database not in (None, "", ":memory:")
        self._path = Path(f"{database}.audit-lock") if on_disk else None

    @contextmanager
    def process(self) -> Iterator[None]:
        """Exclusive among this process's threads and, for an SQLite file, among processes."""
        with self._thread_lock:
            if self._path is None:
                yield
                return
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def begin(self, connection: Connection) -> None:
        """Take the database's own lock as the transaction's first statement."""
        if self._dialect == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            advisory_xact_lock(connection, LOCK_NAME)

"""Writing a new migration revision from the models (developers: ``enclave db revision -m "…"``).

Kept apart from :mod:`ingest.store.migrate`, which every process uses at start-up through
:func:`ingest.store.db.create_schema`: this module opens engines of its own, the start-up path never does.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from ingest.store.db import make_engine
from ingest.store.migrate import alembic_config, upgrade


def autogenerate(message: str, url: str | None = None) -> Path:
    """Write a new revision with what the models have and a database at head lacks.

    Without ``url`` the comparison runs against a throwaway SQLite upgraded to head, so a
    developer needs no server; the generated operations are portable (batch mode on SQLite).
    """
    with tempfile.TemporaryDirectory(prefix="enclave-revision-") as scratch:
        engine = make_engine(url or f"sqlite:///{scratch}/head.db")
        try:
            upgrade(engine)
            with engine.begin() as connection:
                script = command.revision(alembic_config(connection), message=message, autogenerate=True)
        finally:
            engine.dispose()
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic did not write exactly one revision")
    _format(Path(script.path))
    return Path(script.path)


def _format(path: Path) -> None:
    """Give the generated file the project's formatting (ruff is in the ``test`` extra)."""
    if importlib.util.find_spec("ruff") is not None:
        subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(path)], check=True)

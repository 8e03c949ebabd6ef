"""The relational store on SQLite and a real PostgreSQL: migrations equal the models, the service
refuses an unmigrated PostgreSQL with the command to run, job claims race safely, advisory locks lock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from ingest.jobs import claim_next
from ingest.runtime import build_components
from ingest.store.db import advisory_key, advisory_xact_lock, make_engine, session_scope
from ingest.store.migrate import (
    SchemaOutOfDate,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    schema_diff,
    upgrade,
)
from ingest.store.models import Document, Job
from tests.conftest import REPO, make_settings
from tests.postgres import STORES, PostgresCluster

needs_postgres = pytest.mark.skipif("postgresql" not in STORES, reason="ENCLAVE_TEST_STORES excludes postgresql")


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, tmp_path: Path, store_url: str) -> Iterator[str]:
    """A database with no tables at all, on the store under test."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    name = cluster.create_database(migrated=False)
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """An engine on a database at head (SQLite: made by the service's own start-up path)."""
    made = make_engine(store_url)
    if made.dialect.name == "sqlite":
        Path(made.url.database or "").parent.mkdir(parents=True, exist_ok=True)
    ensure_schema(made)
    yield made
    made.dispose()


def _tables(engine: Engine) -> dict[str, set[str]]:
    inspector = inspect(engine)
    return {
        t: {c["name"] for c in inspector.get_columns(t)} | {i["name"] or "" for i in inspector.get_indexes(t)}
        for t in inspector.get_table_names()
    }


def test_migrations_produce_exactly_the_models_schema(empty_url: str) -> None:
    """A model changed without a migration fails here: run `enclave db revision -m "..."` and commit the file."""
    engine = make_engine(empty_url)
    upgrade(engine)
    diff = schema_diff(engine)
    assert diff == [], f"models and migrations disagree; generate a migration (enclave db revision -m ...): {diff}"
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_downgrade_to_nothing_and_back_up(empty_url: str) -> None:
    engine = make_engine(empty_url)
    upgrade(engine)
    downgrade(engine, "base")
    assert set(_tables(engine)) <= {"alembic_version"}
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_type WHERE typtype = 'e'")).scalar() == 0
    upgrade(engine)
    assert schema_diff(engine) == []
    engine.dispose()


def test_sqlite_made_by_the_service_equals_sqlite_made_by_migrations(tmp_path: Path) -> None:
    started, migrated = make_engine(f"sqlite:///{tmp_path / 'a.db'}"), make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    ensure_schema(started)  # what `enclave serve` does on a fresh data directory: no step for the operator
    upgrade(migrated)
    assert current_revision(started) == head_revision()
    assert _tables(started) == _tables(migrated)
    triggers = "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    with started.connect() as a, migrated.connect() as b:
        assert a.execute(text(triggers)).all() == b.execute(text(triggers)).all()
    ensure_schema(started)  # idempotent
    started.dispose()
    migrated.dispose()


@needs_postgres
def test_unmigrated_postgres_is_refused_until_enclave_db_upgrade(
    tmp_path: Path, postgres: PostgresCluster, embedder, parser
) -> None:  # type: ignore[no-untyped-def]
    name = postgres.create_database(migrated=False)
    url = postgres.url(name)
    settings = make_settings(tmp_path / "data", database_url=url)
    with pytest.raises(SchemaOutOfDate, match="enclave db upgrade"):
        build_components(settings, embedder=embedder, parser=parser)
    env = os.environ | {"ENCLAVE_DATABASE_URL": url, "ENCLAVE_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "service", "db", "upgrade"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert head_revision() in done.stdout
    build_components(settings, embedder=embedder, parser=parser).close()
    postgres.drop_database(name)


def _queue(engine: Engine, n: int) -> set[str]:
    with session_scope(engine) as session:
        docs = [
            Document(tenant="t", collection="c", title=f"d{i}", filename=f"d{i}.txt", content_hash=f"{i:064d}")
            for i in range(n)
        ]
        session.add_all(docs)
        session.flush()
        jobs = [Job(document_id=d.id) for d in docs]
        session.add_all(jobs)
        return {j.id for j in jobs}


def test_many_racing_workers_claim_every_job_exactly_once(engine: Engine) -> None:
    queued = _queue(engine, 40)
    claimed: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        while (job := claim_next(engine, threading.current_thread().name)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=work, name=f"w{i}") for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(claimed) == sorted(queued)


@needs_postgres
def test_a_claimer_skips_a_job_another_worker_holds(postgres: PostgresCluster) -> None:
    """SKIP LOCKED: a row locked by a slow claimer is passed over at once, not waited on."""
    name = postgres.create_database(migrated=True)
    engine = make_engine(postgres.url(name))
    _queue(engine, 2)
    with engine.connect() as holder:
        oldest = holder.execute(text("SELECT id FROM job ORDER BY created_at LIMIT 1 FOR UPDATE")).scalar()
        got: list[object] = []
        claimer = threading.Thread(target=lambda: got.append(claim_next(engine, "other")))
        claimer.start()
        claimer.join(timeout=20)
        alive = claimer.is_alive()
        holder.rollback()
    claimer.join()
    assert not alive, "the claimer waited for the locked job instead of skipping it"
    assert got[0] is not None and got[0].id != oldest  # type: ignore[attr-defined]
    engine.dispose()
    postgres.drop_database(name)


def test_advisory_lock_excludes_other_transactions(engine: Engine) -> None:
    with session_scope(engine) as first:
        advisory_xact_lock(first, "enclave.test")
        if engine.dialect.name != "postgresql":
            return  # SQLite: a no-op by design (one writer at a time is the database's own rule)
        with engine.connect() as other:
            taken = other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": advisory_key("enclave.test")})
            assert taken.scalar() is False
            other.rollback()
    with engine.connect() as other:
        taken = other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": advisory_key("enclave.test")})
        assert taken.scalar() is True  # released when the first transaction ended

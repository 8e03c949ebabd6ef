"""Durable ingest jobs in the relational store: queued → running → done | failed.

Claiming is a conditional UPDATE (``… WHERE id = ? AND status = 'queued'``): of several workers
racing for one job exactly one sees a row count of 1, on SQLite and PostgreSQL alike. On PostgreSQL
the candidate is read ``FOR UPDATE SKIP LOCKED``, so racing workers pick different jobs instead of
queueing on the same row and retrying. A job whose
worker died (no heartbeat for ``stale_after``) is put back in the queue; because chunk ids are
deterministic the rerun overwrites, never duplicates, what the dead worker wrote.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import timedelta
from types import TracebackType

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ingest.store.db import session_scope
from ingest.store.models import Job, JobStatus, utcnow

log = logging.getLogger(__name__)
BACKOFF_BASE_S = 2.0


def claim_next(engine: Engine, worker: str) -> Job | None:
    """Atomically take the oldest runnable job, or return None when there is none."""
    for _ in range(5):
        with session_scope(engine) as session:
            job = session.exec(
                select(Job)
                .where(Job.status == JobStatus.queued, col(Job.not_before) <= utcnow())
                .order_by(col(Job.created_at))
                .limit(1)
                .with_for_update(skip_locked=True)  # PostgreSQL: racers take different jobs; SQLite: ignored
            ).first()
            if job is None:
                return None
            now = utcnow()
            taken = session.execute(
                update(Job)
                .where(col(Job.id) == job.id, col(Job.status) == JobStatus.queued)
                .values(
                    status=JobStatus.running, worker=worker, started_at=now, heartbeat_at=now, attempts=Job.attempts + 1
                )
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                session.commit()
                session.refresh(job)
                return job
    return None


def heartbeat(engine: Engine, job_id: str, *, pages: int | None = None, chunks: int | None = None) -> None:
    """Record progress and prove the worker is alive."""
    values: dict[str, object] = {"heartbeat_at": utcnow()}
    if pages is not None:
        values["pages_done"] = pages
    if chunks is not None:
        values["chunks_done"] = chunks
    with session_scope(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(**values))


def embedded_progress(engine: Engine, chunks_done: Mapping[str, int]) -> None:
    """Record how many chunks of each job are embedded, and that its worker is alive: one transaction for
    all the documents one batch served (a run of abstracts puts dozens in one batch), not one per job."""
    if not chunks_done:
        return
    now = utcnow()
    rows = [{"job": job_id, "chunks": chunks, "at": now} for job_id, chunks in chunks_done.items()]
    # Core, not the ORM's bulk UPDATE by primary key: that raises when a row is gone, and a job whose document
    # was deleted while its chunks embedded must not stop the worker (it matches no row, as heartbeat() does)
    table = Job.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.id == bindparam("job"))
        .values(chunks_done=bindparam("chunks"), heartbeat_at=bindparam("at"))
    )
    with session_scope(engine) as session:
        session.connection().execute(statement, rows)


def finish_in(session: Session, job_id: str) -> None:
    """Mark the job done inside ``session``'s transaction (with whatever else must become visible with it)."""
    session.execute(
        update(Job)
        .where(col(Job.id) == job_id)
        .values(status=JobStatus.done, finished_at=utcnow(), error=None, error_code=None)
    )


def fail(engine: Engine, job: Job, message: str, code: str, *, retryable: bool) -> bool:
    """Mark a failed attempt; requeue with exponential backoff when retryable. Returns True if requeued."""
    again = retryable and job.attempts < job.max_attempts
    values: dict[str, object] = {"error": message, "error_code": code}
    if again:
        values |= {
            "status": JobStatus.queued,
            "not_before": utcnow() + timedelta(seconds=BACKOFF_BASE_S * 2 ** (job.attempts - 1)),
        }
    else:
        values |= {"status": JobStatus.failed, "finished_at": utcnow()}
    with session_scope(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job.id).values(**values))
    return again


def requeue_stale(engine: Engine, stale_after: timedelta) -> int:
    """Put back jobs whose worker stopped sending heartbeats (it crashed or was killed)."""
    cutoff = utcnow() - stale_after
    with session_scope(engine) as session:
        result = session.execute(
            update(Job)
            .where(col(Job.status) == JobStatus.running, col(Job.heartbeat_at) < cutoff)
            .values(status=JobStatus.queued, worker=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def pending_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return len(session.exec(select(Job.id).where(col(Job.status).in_([JobStatus.queued, JobStatus.running]))).all())


class Heartbeats:
    """Keeps every job this worker holds looking alive, from a background thread.

    A long step (OCR of a 300-page scan, a document waiting for its turn to be embedded) sends no
    progress for minutes; without a heartbeat another worker would take the job as abandoned and
    process it a second time. Beats every ``interval_s`` for the jobs between :meth:`hold` and
    :meth:`release`; a killed worker stops beating, so its jobs go stale and are requeued.
    """

    def __init__(self, engine: Engine, interval_s: float) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, job_id: str) -> None:
        with self._lock:
            self._held.add(job_id)

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.discard(job_id)

    def __enter__(self) -> Heartbeats:
        self._thread = threading.Thread(target=self._run, name="enclave-heartbeats", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._interval_s + 5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            with self._lock:
                held = sorted(self._held)
            if not held:
                continue
            try:
                with session_scope(self._engine) as session:
                    session.execute(update(Job).where(col(Job.id).in_(held)).values(heartbeat_at=utcnow()))
            except Exception:  # noqa: BLE001 - a missed beat is retried next interval
                log.warning("heartbeat failed jobs=%d", len(held))

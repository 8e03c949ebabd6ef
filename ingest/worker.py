"""Workers that drain the durable job queue: in the service's process, or as ``enclave worker``.

Every worker sends heartbeats for the jobs it holds and requeues jobs whose worker stopped
sending them (it crashed or was killed); see :mod:`ingest.jobs`. Several ``enclave worker``
processes may share one queue (the claim is a conditional UPDATE); with the embedded index
(Qdrant Edge, open in one process at a time) run one, or the service's own worker.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from ingest.batching import BatchingWorker, Finished
from ingest.index.maintenance import build_graph_if_due
from ingest.jobs import Heartbeats, pending_count, requeue_stale
from ingest.runtime import Components

log = logging.getLogger(__name__)
BEATS_PER_STALE = 4  # heartbeats sent within one stale period: a late beat or two is not a death


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def stale_after(components: Components) -> timedelta:
    return timedelta(seconds=components.settings.job_stale_after_s)


def heartbeats(components: Components) -> Heartbeats:
    return Heartbeats(components.engine, components.settings.job_stale_after_s / BEATS_PER_STALE)


def drain(components: Components, name: str | None = None, on_finished: Finished | None = None) -> int:
    """Process jobs until the queue is empty; returns how many were processed."""
    with heartbeats(components) as beats:
        return BatchingWorker(components, name or worker_name(), beats, on_finished=on_finished).drain()


def run_worker(
    components: Components,
    *,
    until_empty: bool = False,
    poll_s: float = 1.0,
    stop: threading.Event | None = None,
    on_finished: Finished | None = None,
) -> int:
    """Process jobs as they come until ``stop`` is set; returns how many were processed.

    ``until_empty`` returns once no job is queued or running anywhere, after waiting for running
    jobs of dead workers to go stale and taking them over.
    """
    stop = stop or threading.Event()
    name, processed = worker_name(), 0
    with heartbeats(components) as beats:
        while not stop.is_set():
            requeued = requeue_stale(components.engine, stale_after(components))
            if requeued:
                log.warning("requeued abandoned jobs count=%d", requeued)
            processed += BatchingWorker(components, name, beats, stop=stop, on_finished=on_finished).drain()
            build_graph_if_due(components.index)  # the queue is empty: a graph for what it added, when due
            if until_empty and pending_count(components.engine) == 0:
                break
            stop.wait(poll_s)
    return processed


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT, so the worker finishes its current documents, then exits."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class BackgroundWorker:
    """Runs :func:`drain` in a daemon thread, woken by :meth:`notify` or every ``poll_s`` seconds."""

    def __init__(self, components: Components, poll_s: float = 1.0) -> None:
        self._components = components
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        requeue_stale(self._components.engine, stale_after(self._components))
        self._thread = threading.Thread(target=self._run, name="enclave-ingest-worker", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        name = worker_name()
        with heartbeats(self._components) as beats:
            while not self._stop.is_set():
                try:
                    BatchingWorker(self._components, name, beats, stop=self._stop).drain()
                    build_graph_if_due(self._components.index)  # also an index filled before this release
                    requeue_stale(self._components.engine, stale_after(self._components))
                except Exception:  # noqa: BLE001 - the worker must outlive one bad iteration
                    log.exception("ingest worker iteration failed")
                self._wake.wait(self._poll_s)
                self._wake.clear()

"""A background worker that drains the durable job queue."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from ingest.documents import process_next
from ingest.jobs import requeue_stale
from ingest.runtime import Components

log = logging.getLogger(__name__)
STALE_AFTER = timedelta(seconds=60)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def drain(components: Components, name: str | None = None) -> int:
    """Process jobs until the queue is empty; returns how many were processed."""
    name = name or worker_name()
    processed = 0
    while process_next(components, name) is not None:
        processed += 1
    return processed


class BackgroundWorker:
    """Runs :func:`drain` in a daemon thread, woken by :meth:`notify` or every ``poll_s`` seconds."""

    def __init__(self, components: Components, poll_s: float = 1.0) -> None:
        self._components = components
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        requeue_stale(self._components.engine, STALE_AFTER)
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
        while not self._stop.is_set():
            try:
                drain(self._components, name)
                requeue_stale(self._components.engine, STALE_AFTER)
            except Exception:  # noqa: BLE001 - the worker must outlive one bad iteration
                log.exception("ingest worker iteration failed")
            self._wake.wait(self._poll_s)
            self._wake.clear()

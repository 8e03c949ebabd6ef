"""Draining the job queue with both cores busy: parse ahead, embed in batches across documents.

Embedding dominates ingestion, and the embedder is fastest on full batches. A producer thread
claims jobs and runs :func:`ingest.pipeline.prepare` (parse, OCR, redact, chunk) while the
calling thread embeds: chunk texts from consecutive documents are packed into one batch, so a
run of one-chunk abstracts embeds as efficiently as one long contract. A document is completed
(swapped into the index, rows committed) as soon as its last chunk is embedded, with the others
a batch finished: one index flush for them all.

Each stage's failure is recorded on its own job (:func:`ingest.pipeline.fail_job`); the other
documents of a shared batch are failed (and retried) only when the batch's embedding itself fails.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.jobs import Heartbeats, claim_next, embedded_progress
from ingest.pipeline import Prepared, complete_all, embed, fail_job, prepare, start
from ingest.runtime import Components
from ingest.store.models import Job

log = logging.getLogger(__name__)
# documents parsed ahead of the embedder (bounded: each holds its text and chunk texts). Enough short ones to
# fill a batch: with 2, 300 abstracts of ~7 chunks went in 172 batches of ~13 instead of 41 of ~53 (42.9 -> 40.1 s)
PREFETCH = 16
Finished = Callable[[Job], None]


@dataclass
class _Slot:
    """A prepared document and how many of its texts have been handed to a batch."""

    prepared: Prepared
    taken: int = 0
    failed: bool = False

    @property
    def left(self) -> int:
        return 0 if self.failed else len(self.prepared.texts) - self.taken

    @property
    def done(self) -> bool:
        return self.failed or self.prepared.embedded


@dataclass
class _Batch:
    texts: list[str] = field(default_factory=list)
    owners: list[tuple[_Slot, int]] = field(default_factory=list)  # (slot, how many of the texts)


class BatchingWorker:
    """Processes queued jobs until none is left; see the module docstring."""

    def __init__(
        self,
        components: Components,
        name: str,
        heartbeats: Heartbeats | None = None,
        *,
        batch_size: int | None = None,
        on_finished: Finished | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self._components = components
        self._name = name
        self._beats = heartbeats
        self._batch_size = batch_size or components.settings.embedder.batch_size
        self._on_finished = on_finished
        self._stop = stop or threading.Event()

    def drain(self) -> int:
        """Process jobs until the queue is empty (or ``stop`` is set); returns how many were processed."""
        ready: queue.Queue[Prepared | Job | None] = queue.Queue(maxsize=PREFETCH)
        producer = threading.Thread(target=self._produce, args=(ready,), name="enclave-prepare", daemon=True)
        producer.start()
        try:
            return self._consume(ready)
        finally:
            producer.join()

    # -- producer: claim and prepare ---------------------------------------------------------------
    def _produce(self, ready: queue.Queue[Prepared | Job | None]) -> None:
        try:
            while not self._stop.is_set():
                job = claim_next(self._components.engine, self._name)
                if job is None:
                    break
                ready.put(self._prepare(job))
        except Exception:  # noqa: BLE001 - the consumer must still be told the queue is done
            log.exception("claiming ingest jobs failed worker=%s", self._name)
        finally:
            ready.put(None)

    def _prepare(self, job: Job) -> Prepared | Job:
        """The prepared job, or the job itself when it ended already (failed, or its document is gone)."""
        if self._beats is not None:
            self._beats.hold(job.id)
        document = start(self._components, job)
        if document is None:
            return job
        try:
            return prepare(self._components, job, document)
        except Exception as exc:  # noqa: BLE001 - recorded on the job by fail_job
            fail_job(self._components, job, document, exc)
            return job

    # -- consumer: embed across documents, complete each when its chunks are in ----------------------
    def _consume(self, ready: queue.Queue[Prepared | Job | None]) -> int:
        slots: deque[_Slot] = deque()
        processed, producing = 0, True
        while producing or slots:
            while producing and (not slots or sum(s.left for s in slots) < self._batch_size):
                item = ready.get() if not slots else _poll(ready)
                if item is _EMPTY:
                    break
                if item is None:
                    producing = False
                elif isinstance(item, Job):
                    processed += self._finished(item)
                elif isinstance(item, Prepared):
                    slots.append(_Slot(item))
            if slots:
                self._embed(self._next_batch(slots))
                processed += self._complete_ready(slots)
        return processed

    def _next_batch(self, slots: deque[_Slot]) -> _Batch:
        batch = _Batch()
        for slot in slots:
            room = self._batch_size - len(batch.texts)
            if room <= 0:
                break
            take = min(room, slot.left)
            if take:
                batch.texts.extend(slot.prepared.texts[slot.taken : slot.taken + take])
                batch.owners.append((slot, take))
                slot.taken += take
        return batch

    def _embed(self, batch: _Batch) -> None:
        try:
            dense, sparse = embed(self._components, batch.texts)
        except Exception as exc:  # noqa: BLE001 - every document in the batch records the failure
            for slot, _ in batch.owners:
                slot.failed = True
                fail_job(self._components, slot.prepared.job, slot.prepared.document, exc)
            return
        position = 0
        for slot, count in batch.owners:
            slot.prepared.dense.extend(dense[position : position + count])
            slot.prepared.sparse.extend(sparse[position : position + count])
            position += count
        done = {slot.prepared.job.id: len(slot.prepared.dense) for slot, _ in batch.owners}
        embedded_progress(self._components.engine, done)

    def _complete_ready(self, slots: deque[_Slot]) -> int:
        """Complete (or drop, when failed) the documents at the front whose chunks are all embedded.

        Together (:func:`ingest.pipeline.complete_all`): one index flush for all the batch finished."""
        done: list[_Slot] = []
        while slots and slots[0].done:
            done.append(slots.popleft())
        complete_all(self._components, [slot.prepared for slot in done if not slot.failed])
        return sum(self._finished(slot.prepared.job) for slot in done)

    def _finished(self, job: Job) -> int:
        if self._beats is not None:
            self._beats.release(job.id)
        if self._on_finished is not None:
            self._on_finished(job)
        return 1


_EMPTY = object()


def _poll(ready: queue.Queue[Prepared | Job | None]) -> Prepared | Job | None | object:
    """The next prepared document if one is waiting; ``_EMPTY`` rather than wait for it."""
    try:
        return ready.get_nowait()
    except queue.Empty:
        return _EMPTY

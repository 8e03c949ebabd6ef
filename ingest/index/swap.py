"""Replacing a document's chunks so that a reader sees the old version or the new one, never both or neither.

A new version is written in two index operations (upsert the new points, delete the other
versions); a search running between them would see both. :class:`AtomicSwapIndex` wraps any
:class:`~ingest.index.port.VectorIndex` and makes the pair one step for every reader in this
process: searches and counts share a read lock, a swap holds the write lock. The embedded index
(Qdrant Edge) is only ever open in one process, so that covers all of its readers.

Nothing of a new version is written before the swap, so a job that fails or is killed while
parsing or embedding leaves the index exactly as it was: no partial version, nothing to clean up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from ingest.index.port import AccessFilter, ChunkRecord, SearchMode, SearchResult, SparseVector, VectorIndex


class ReadWriteLock:
    """Many readers or one writer; a waiting writer blocks new readers, so swaps are not starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writer and self._readers == 0)
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class AtomicSwapIndex:
    """A :class:`VectorIndex` whose :meth:`swap_version` is atomic for readers in this process."""

    def __init__(self, inner: VectorIndex) -> None:
        self.inner = inner
        self._lock = ReadWriteLock()
        self._maintenance = threading.Lock()  # flush and vacuum rewrite files: not while a backup copies them

    def swap_version(
        self,
        records: Sequence[ChunkRecord],
        dense: Sequence[Sequence[float]],
        sparse: Sequence[SparseVector],
        *,
        previous: int | None,
    ) -> None:
        """See :func:`swap_version`."""
        with self._lock.write():
            _swap(self.inner, records, dense, sparse, previous)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def upsert(
        self, records: Sequence[ChunkRecord], dense: Sequence[Sequence[float]], sparse: Sequence[SparseVector]
    ) -> None:
        self.inner.upsert(records, dense, sparse)

    def delete_document(self, tenant: str, document_id: str, *, keep_version: int | None = None) -> None:
        with self._lock.write():
            self.inner.delete_document(tenant, document_id, keep_version=keep_version)

    def search(
        self,
        dense: Sequence[float],
        sparse: SparseVector,
        access: AccessFilter,
        limit: int,
        mode: SearchMode = "hybrid",
        *,
        best_dense: bool = True,
    ) -> SearchResult:
        with self._lock.read():
            return self.inner.search(dense, sparse, access, limit, mode, best_dense=best_dense)

    def count(self, access: AccessFilter) -> int:
        with self._lock.read():
            return self.inner.count(access)

    def healthy(self) -> bool:
        return self.inner.healthy()

    def flush(self) -> None:
        with self._maintenance:
            self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def optimize(self) -> bool:
        """Compact the underlying index when the adapter can (drops deleted points from disk)."""
        optimize = getattr(self.inner, "optimize", None)
        with self._maintenance:
            return bool(optimize()) if optimize is not None else False

    @contextmanager
    def exclusive(self) -> Iterator[VectorIndex]:
        """Exclude every write, flush and vacuum (and, like a swap, searches) until the block ends.

        Yields the innermost adapter, whose files then stay unchanged: a backup copies them here.
        """
        with self._lock.write(), self._maintenance:
            yield innermost(self.inner)


def innermost(index: VectorIndex) -> VectorIndex:
    """The adapter under every wrapper (:class:`AtomicSwapIndex`, the sealing one): each keeps it as ``inner``."""
    while hasattr(index, "inner"):
        index = index.inner
    return index


@contextmanager
def flushed_once(index: VectorIndex) -> Iterator[None]:
    """The block's index writes (this thread's) are made durable together, by one flush when it ends.

    Where the innermost adapter flushes each delete before returning (Qdrant Edge), it defers that
    inside the block and ``index.flush()`` follows it; an adapter without ``deferred_flush`` writes as
    always. A block that raises is not flushed: its writes are durable at the next flush.
    """
    deferred = getattr(innermost(index), "deferred_flush", None)
    if deferred is None:
        yield
        return
    with deferred():
        yield
    index.flush()


def swap_version(
    index: VectorIndex,
    records: Sequence[ChunkRecord],
    dense: Sequence[Sequence[float]],
    sparse: Sequence[SparseVector],
    *,
    previous: int | None,
) -> None:
    """Make ``records`` (all chunks of one document version) the document's only indexed version.

    ``previous`` is the version readers see now (None for a first ingest). If writing fails,
    what was written of the new version is removed again, leaving ``previous`` as it was. Atomic
    for readers when ``index`` is an :class:`AtomicSwapIndex`; otherwise a reader may briefly see
    both versions.
    """
    if isinstance(index, AtomicSwapIndex):
        index.swap_version(records, dense, sparse, previous=previous)
    else:
        _swap(index, records, dense, sparse, previous)


def _swap(
    index: VectorIndex,
    records: Sequence[ChunkRecord],
    dense: Sequence[Sequence[float]],
    sparse: Sequence[SparseVector],
    previous: int | None,
) -> None:
    if not records:
        return
    first = records[0]
    try:
        index.upsert(records, dense, sparse)
    except BaseException:
        index.delete_document(first.tenant, first.document_id, keep_version=previous)  # None: a first ingest, all
        raise
    index.delete_document(first.tenant, first.document_id, keep_version=first.version)

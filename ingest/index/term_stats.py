"""BM25 term statistics over exactly the chunks a caller may see.

An index-wide IDF lets one tenant's documents move another tenant's scores (and so reveal whether and
how often hidden documents use a word), and inside a tenant lets documents of one ACL group move the
scores another group sees. The adapters therefore store the term-frequency half of BM25 in the sparse
vectors (no index-side IDF) and weigh each query term here, by its IDF over the chunks that the
caller's :class:`~ingest.index.port.AccessFilter` admits: a search's scores depend only on what the
caller may read. Counts come from the index itself (each point carries its term ids in the ``terms``
payload field, indexed), so they can never drift from the stored chunks; they are cached until the
next write through this process, and for at most ``max_age_s`` (writes by other processes, as with a
Qdrant cluster and several replicas, show within that time). The embedded Qdrant Edge shard is locked to
one process, so its counts are kept until a write (or a reopen) however old they are.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from ingest.index.port import AccessFilter, SparseVector

TERMS_FIELD = "terms"  # payload field holding a point's sparse term ids (an integer index)
CACHE_LIMIT = 65_536  # cached counts before the cache is emptied
MAX_AGE_S = 30.0  # counts older than this are taken again


def bm25_idf(total: int, containing: int) -> float:
    """Okapi BM25's IDF, as Qdrant's ``Modifier.IDF`` computes it: ln(1 + (N − n + 0.5) / (n + 0.5))."""
    return math.log(1.0 + (total - containing + 0.5) / (containing + 0.5))


class ScopedIdf:
    """Weighs a query's sparse terms by their IDF among the chunks one access filter admits.

    ``count_all(access)`` and ``count_term(access, term)`` count points in the index; both answers
    are cached per (filter, term) and dropped by :meth:`invalidate`, which every write calls.
    """

    def __init__(
        self,
        count_all: Callable[[AccessFilter], int],
        count_term: Callable[[AccessFilter, int], int],
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        self._count_all = count_all
        self._count_term = count_term
        self._max_age_s = max_age_s
        self._cache: dict[tuple[AccessFilter, int | None], int] = {}
        self._born = time.monotonic()
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._cache = {}
            self._born = time.monotonic()

    def weigh(self, access: AccessFilter, query: SparseVector) -> SparseVector:
        """``query`` with each value multiplied by its term's scoped IDF; terms no visible chunk holds are dropped."""
        if not query.indices:
            return query
        total = self._cached(access, None)
        indices: list[int] = []
        values: list[float] = []
        for term, value in zip(query.indices, query.values, strict=True):
            containing = self._cached(access, term)
            if containing:
                indices.append(term)
                values.append(value * bm25_idf(total, containing))
        return SparseVector(indices, values)

    def _cached(self, access: AccessFilter, term: int | None) -> int:
        if time.monotonic() - self._born > self._max_age_s:
            self.invalidate()
        cache = self._cache
        key = (access, term)
        found = cache.get(key)
        if found is None:
            found = self._count_all(access) if term is None else self._count_term(access, term)
            with self._lock:
                if cache is self._cache:  # no write happened while counting
                    if len(cache) >= CACHE_LIMIT:
                        cache.clear()
                    cache[key] = found
        return found

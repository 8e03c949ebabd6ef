"""Per-caller BM25 statistics: the IDF, what is cached, and when counts are taken again."""

from __future__ import annotations

import math

from ingest.index.port import AccessFilter, SparseVector
from ingest.index.term_stats import ScopedIdf, bm25_idf


class Counts:
    """Counts per term for one corpus, recording every question asked of it."""

    def __init__(self, total: int, per_term: dict[int, int]) -> None:
        self.total, self.per_term, self.asked = total, per_term, 0

    def all(self, access: AccessFilter) -> int:
        self.asked += 1
        return self.total

    def term(self, access: AccessFilter, term: int) -> int:
        self.asked += 1
        return self.per_term.get(term, 0)


def test_idf_is_okapis_and_terms_nobody_may_read_are_dropped() -> None:
    counts = Counts(10, {1: 1, 2: 10})
    weighed = ScopedIdf(counts.all, counts.term).weigh(
        AccessFilter(tenant="t"), SparseVector([1, 2, 3], [1.0, 2.0, 1.0])
    )
    assert weighed.indices == [1, 2]
    assert math.isclose(weighed.values[0], math.log(1 + 9.5 / 1.5))
    assert math.isclose(weighed.values[1], 2.0 * bm25_idf(10, 10)) and bm25_idf(10, 10) > 0


def test_counts_are_cached_per_filter_until_a_write_or_their_age_runs_out() -> None:
    counts = Counts(10, {1: 3})
    idf = ScopedIdf(counts.all, counts.term, max_age_s=3600)
    query, a, b = SparseVector([1], [1.0]), AccessFilter(tenant="t"), AccessFilter(tenant="t", principal_user="u")
    first = idf.weigh(a, query)
    asked = counts.asked
    assert idf.weigh(a, query) == first and counts.asked == asked  # cached
    idf.weigh(b, query)
    assert counts.asked == asked + 2  # another reader's scope is counted on its own
    counts.per_term[1] = 5
    idf.invalidate()  # what every write does
    assert idf.weigh(a, query) != first
    stale = ScopedIdf(counts.all, counts.term, max_age_s=0.0)
    stale.weigh(a, query)
    before = counts.asked
    stale.weigh(a, query)
    assert counts.asked == before + 2  # too old: taken again

"""Ranking metrics, as BEIR (pytrec_eval) and LegalBench-RAG compute them.

Document-level: ``ranking`` is a list of document ids best first (duplicates removed), ``qrels``
maps relevant ids to their grade. nDCG uses linear gain (``rel / log2(rank + 1)``), as pytrec_eval.
Span-level: the retrieved chunks' character ranges are compared with the judged spans; precision
is the share of retrieved characters inside a judged span, recall the share of judged characters
that some retrieved chunk covers (overlapping ranges counted once).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

Range = tuple[str, int, int]  # (document id, start, end)


def ndcg_at(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    dcg = sum(qrels.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted(qrels.values(), reverse=True)[:k]
    idcg = sum(rel / math.log2(i + 2) for i, rel in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranking: Sequence[str], relevant: Iterable[str], k: int) -> float:
    wanted = set(relevant)
    return len(wanted & set(ranking[:k])) / len(wanted) if wanted else 0.0


def mrr_at(ranking: Sequence[str], relevant: Iterable[str], k: int) -> float:
    wanted = set(relevant)
    return next((1.0 / (i + 1) for i, doc in enumerate(ranking[:k]) if doc in wanted), 0.0)


def dedupe(ids: Iterable[str]) -> list[str]:
    """First occurrence wins: a document ranks where its best chunk ranks."""
    return list(dict.fromkeys(ids))


def _merged(ranges: Iterable[Range]) -> dict[str, list[tuple[int, int]]]:
    by_doc: dict[str, list[tuple[int, int]]] = {}
    for doc, start, end in sorted(ranges):
        spans = by_doc.setdefault(doc, [])
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        elif end > start:
            spans.append((start, end))
    return by_doc


def _length(merged: Mapping[str, list[tuple[int, int]]]) -> int:
    return sum(end - start for spans in merged.values() for start, end in spans)


def _intersection(a: Mapping[str, list[tuple[int, int]]], b: Mapping[str, list[tuple[int, int]]]) -> int:
    total = 0
    for doc, spans in a.items():
        for start, end in spans:
            total += sum(max(0, min(end, e) - max(start, s)) for s, e in b.get(doc, ()))
    return total


def span_precision_recall(retrieved: Iterable[Range], judged: Iterable[Range]) -> tuple[float, float]:
    """Character-level (precision, recall) of retrieved ranges against judged spans."""
    got, want = _merged(retrieved), _merged(judged)
    overlap = _intersection(got, want)
    got_len, want_len = _length(got), _length(want)
    return (overlap / got_len if got_len else 0.0), (overlap / want_len if want_len else 0.0)


def overlaps(chunk: Range, spans: Iterable[Range]) -> bool:
    doc, start, end = chunk
    return any(doc == d and start < e and s < end for d, s, e in spans)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]

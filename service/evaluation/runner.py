"""Run a data set's queries through the production retrieval path and score the rankings.

Each query goes through :func:`service.retrieval.retrieve` (query embedding, BM25 encoding and one
index query with the access filter inside), timed end to end. BEIR data sets are scored per
document (a document ranks where its best chunk ranks); span data sets per chunk (a chunk is
relevant when it comes from the judged document and overlaps a judged span) and per character.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest.index.port import AccessFilter, ScoredChunk, SearchMode
from service.evaluation import metrics
from service.evaluation.corpus_index import EVAL_TENANT, EvalIndex
from service.evaluation.datasets import EvalDataset, Span
from service.rerank.port import Reranker
from service.retrieval import retrieve

DOC_DEPTH = 100  # documents (BEIR) or chunks (span) ranked per query: recall@100 needs 100
CHUNKS_PER_DOC = 3  # BEIR: chunks fetched per wanted document, so 100 distinct documents remain

QueryProgress = Callable[[int, int], None]


@dataclass
class _Scores:
    values: dict[str, list[float]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def means(self) -> dict[str, float]:
        return {name: round(statistics.fmean(vals), 4) for name, vals in self.values.items()}


def evaluate(
    dataset: EvalDataset,
    stack: EvalIndex,
    mode: SearchMode = "hybrid",
    k: int = 10,
    progress: QueryProgress | None = None,
    reranker: Reranker | None = None,
    focus: bool = False,
    per_query: bool = False,
    embed_ask: bool = False,
) -> dict[str, Any]:
    """Score every judged query of ``dataset``; returns the report (metrics, latency, index facts).

    With a ``reranker``, its best ``k`` of the top ``reranker.candidates`` lead the ranking and the
    rest of the fused ranking follows (recall@100 then measures the index, @k the reranker).
    With ``per_query``, the report's ``per_query`` holds every metric's value per query, in the order
    of ``per_query["ids"]`` (for breakdowns by kind of question). ``focus``: document focus
    (``ENCLAVE_RETRIEVAL__DOCUMENT_FOCUS``); ``embed_ask``: its search also embeds the ask
    (``ENCLAVE_RETRIEVAL__FOCUS_ASK_EMBEDDING``, :func:`service.retrieval.focused`).
    """
    access = AccessFilter(tenant=EVAL_TENANT)
    depth = max(k, DOC_DEPTH)
    limit = depth * CHUNKS_PER_DOC if dataset.kind == "beir" else depth
    retrieve(stack, "warm-up query", access, limit, mode, evidence=False)
    scores = _Scores()
    for i, (qid, text) in enumerate(dataset.queries.items(), start=1):
        started = time.perf_counter()
        names = stack.names_of if focus else None
        # ranked as POST /v1/search ranks them: no evidence lookup, which only the answerer's gate reads
        chunks = retrieve(stack, text, access, limit, mode, names=names, embed_ask=embed_ask, evidence=False).chunks
        if reranker is not None:
            chunks = _reranked(reranker, text, chunks, k)
        scores.latencies_ms.append((time.perf_counter() - started) * 1000)
        if dataset.kind == "beir":
            _score_documents(scores, chunks, dataset.qrels[qid], k)
        else:
            _score_spans(scores, chunks, dataset.spans[qid], stack.chunks, k)
        if progress is not None:
            progress(i, len(dataset.queries))
    report = _report(dataset, stack, mode, k, scores)
    if per_query:
        report["per_query"] = {"ids": list(dataset.queries), **scores.values}
    return report


def _reranked(reranker: Reranker, query: str, chunks: list[ScoredChunk], k: int) -> list[ScoredChunk]:
    head = reranker.rerank(query, chunks[: reranker.candidates], k)
    kept = {c.record.id for c in head}
    return head + [c for c in chunks if c.record.id not in kept]


def _score_documents(scores: _Scores, chunks: list[ScoredChunk], qrels: dict[str, int], k: int) -> None:
    ranking = metrics.dedupe(c.record.document_id for c in chunks)
    for cut in sorted({10, k}):
        scores.add(f"ndcg@{cut}", metrics.ndcg_at(ranking, qrels, cut))
        scores.add(f"recall@{cut}", metrics.recall_at(ranking, qrels, cut))
        scores.add(f"mrr@{cut}", metrics.mrr_at(ranking, qrels, cut))
    scores.add("recall@100", metrics.recall_at(ranking, qrels, 100))


def _score_spans(
    scores: _Scores, chunks: list[ScoredChunk], spans: list[Span], chunk_map: dict[str, list[tuple[int, int]]], k: int
) -> None:
    judged = [(s.doc_id, s.start, s.end) for s in spans]
    relevant = {
        _key(doc, a, b)
        for doc in {s.doc_id for s in spans}
        for a, b in chunk_map.get(doc, ())
        if metrics.overlaps((doc, a, b), judged)
    }
    ranges = [(c.record.document_id, c.record.start, c.record.end) for c in chunks]
    ranking = [_key(*r) for r in ranges]
    for cut in sorted({10, k}):
        scores.add(f"ndcg@{cut}", metrics.ndcg_at(ranking, dict.fromkeys(relevant, 1), cut))
        scores.add(f"recall@{cut}", metrics.recall_at(ranking, relevant, cut))
        scores.add(f"mrr@{cut}", metrics.mrr_at(ranking, relevant, cut))
        precision, recall = metrics.span_precision_recall(ranges[:cut], judged)
        scores.add(f"span_precision@{cut}", precision)
        scores.add(f"span_recall@{cut}", recall)
    scores.add("recall@100", metrics.recall_at(ranking, relevant, 100))
    judged_documents = {s.doc_id for s in spans}
    scores.add("doc_hit@1", float(bool(ranges) and ranges[0][0] in judged_documents))  # the judged contract leads
    scores.add("doc_hit@10", float(any(r[0] in judged_documents for r in ranges[:10])))


def _key(doc: str, start: int, end: int) -> str:
    return f"{doc}:{start}:{end}"


def _report(dataset: EvalDataset, stack: EvalIndex, mode: SearchMode, k: int, scores: _Scores) -> dict[str, Any]:
    lat = scores.latencies_ms
    return {
        "dataset": dataset.name,
        "format": dataset.kind,
        "split": dataset.split,
        "mode": mode,
        "k": k,
        "queries": len(dataset.queries),
        **scores.means(),
        "latency_p50_ms": round(metrics.percentile(lat, 50), 2),
        "latency_p95_ms": round(metrics.percentile(lat, 95), 2),
        "latency_mean_ms": round(statistics.fmean(lat), 2) if lat else 0.0,
        "index": {**stack.stats, "reused": not stack.built, "path": str(stack.directory)},
    }

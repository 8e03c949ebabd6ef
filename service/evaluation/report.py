"""``enclave eval``: load a data set, open (or build) its isolated index, score one mode, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.config import Settings
from ingest.index.port import SearchMode
from ingest.runtime import make_embedder
from service.evaluation.corpus_index import open_eval_index
from service.evaluation.datasets import load_dataset
from service.evaluation.runner import evaluate

HEADLINE = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "span_recall@10", "span_precision@10")


def run_eval(
    settings: Settings, dataset_dir: Path, split: str, mode: SearchMode, k: int, progress: Progress | None = None
) -> dict[str, Any]:
    """The report ``enclave eval`` prints (see :func:`service.evaluation.runner.evaluate`).

    :raises InvalidRequest: the directory is not a known data set format, or the split is missing.
    :raises ServiceUnavailable: another process holds the evaluation index open.
    """
    dataset = load_dataset(dataset_dir, split)
    embedder = make_embedder(settings)
    embedder.warm_up()
    with progress or Progress(disable=True) as bar:
        indexing = bar.add_task("indexing corpus (chunks)", total=None)
        stack = open_eval_index(
            dataset, settings, embedder, progress=lambda done, _docs: bar.update(indexing, completed=done)
        )
        bar.update(indexing, total=stack.stats.get("chunks"), completed=stack.stats.get("chunks"))
        querying = bar.add_task(f"{mode} queries", total=len(dataset.queries))
        try:
            return evaluate(
                dataset,
                stack,
                mode,
                k,
                progress=lambda done, _total: bar.update(querying, completed=done),
                focus=settings.retrieval.document_focus,
                embed_ask=settings.retrieval.focus_ask_embedding,
            )
        finally:
            stack.close()


def progress_bar(console: Any) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def table(report: dict[str, Any]) -> Table:
    """The human-readable form: one row per metric, then latency and the index used."""
    title = f"{report['dataset']} ({report['format']}, split {report['split']}, mode {report['mode']}, "
    title += f"{report['queries']} queries)"
    out = Table("metric", "value", title=title)
    names = [n for n in HEADLINE if n in report] + sorted(n for n in report if "@" in n and n not in HEADLINE)
    for name in names:
        out.add_row(name, f"{report[name]:.4f}")
    out.add_row("latency p50 / p95 (ms)", f"{report['latency_p50_ms']:.1f} / {report['latency_p95_ms']:.1f}")
    index = report["index"]
    out.add_row(
        "index",
        f"{index.get('documents')} documents, {index.get('chunks')} chunks, "
        f"{'reused' if index.get('reused') else 'built'} at {index.get('path')}",
    )
    return out

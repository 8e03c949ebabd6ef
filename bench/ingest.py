"""Ingestion throughput: the whole pipeline next to the bare embedder, on the same chunks, in one run.

* pipeline: ``enclave ingest``'s path — submit (hash, stored original, rows) → the batching worker
  (parse ahead in a thread → chunk → dense + BM25 in batches across documents → atomic swap into
  Qdrant Edge → chunk rows). Timed from the first claim to the last commit, and with submission.
* bare embedder: the same model's ``embed_passages`` on exactly the texts the pipeline embedded
  (context header + chunk), in the same order and batch size — the ceiling the pipeline chases.
* PDFs: the CUAD filings through the same pipeline, pages per second (pdfminer text layer), twice: parsed
  in the worker's process (``ENCLAVE_PARSER__ISOLATED=false``), then in a child process (the default).

Corpus: CUAD plain-text contracts (evenly spaced through the sorted 510), and SciFact abstracts
written one small text file each (title, blank line, abstract), as a user would drop them into a
folder. Model loading is excluded. MiniLM embeds roughly 10-20 chunks of 200 tokens per second on
two cores, so the whole corpus (about 45,000 chunks, embedded twice: pipeline and bare) takes over
an hour; the default is a sample sized for about 15 minutes, ``--full`` runs everything.

    .venv/bin/python -m bench.ingest                          # 40 contracts, 1,000 abstracts, 20 PDFs (~15 min)
    .venv/bin/python -m bench.ingest --full                   # 510 contracts, 5,183 abstracts, 20 PDFs (1-2 h)
    .venv/bin/python -m bench.ingest --contracts 10 --abstracts 200 --pdfs 2     # ~3 min
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import DATA, format_table, ratio, say, write_json

TENANT, COLLECTION = "default", "bench"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contracts", type=int, default=40, help="CUAD plain-text contracts (of 510, evenly spaced)")
    p.add_argument("--abstracts", type=int, default=1000, help="SciFact abstracts (of 5,183), one .txt each")
    p.add_argument("--pdfs", type=int, default=20, help="CUAD PDF filings (of 20)")
    p.add_argument("--full", action="store_true", help="every contract and abstract (overrides the counts)")
    p.add_argument("--batch", type=int, default=64, help="embedding batch size (pipeline and bare alike)")
    p.add_argument(
        "--forward-batch", type=int, default=16, help="texts per forward pass within a batch (pipeline and bare alike)"
    )
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/enclave-bench/ingest"))
    p.add_argument("--name", default="ingest", help="results file name (bench/results/<name>.json)")
    args = p.parse_args(argv)
    if args.full:
        args.contracts, args.abstracts = 510, 5183
    return args


@dataclass
class Run:
    """One pipeline run over one corpus."""

    label: str
    documents: int
    failed: int
    chunks: int
    pages: int
    submit_s: float
    process_s: float
    stages_s: dict[str, float]
    texts: list[str]

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.process_s if self.process_s else 0.0


def write_corpus(args: argparse.Namespace, root: Path, data: Path = DATA) -> dict[str, list[Path]]:
    """The files a user would drop in a folder: contracts as they are, each abstract as a small text file."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "abstracts").mkdir(parents=True)
    everything = sorted((data / "cuad" / "contracts").glob("*.txt"))
    step = max(1, len(everything) // max(args.contracts, 1))
    contracts = everything[::step][: args.contracts]  # short and long ones alike, not the first few letters
    abstracts: list[Path] = []
    with (data / "scifact" / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if len(abstracts) >= args.abstracts:
                break
            row = json.loads(line)
            path = root / "abstracts" / f"scifact-{row['_id']}.txt"
            path.write_text(f"{row['title']}\n\n{row['text']}\n", encoding="utf-8")
            abstracts.append(path)
    pdfs = sorted(p for p in (data / "cuad" / "pdf").iterdir() if p.suffix.lower() == ".pdf")[: args.pdfs]
    return {"text": contracts + abstracts, "pdf": pdfs}


def run_pipeline(label: str, files: list[Path], data_dir: Path, embedder: Any, parser: Any, batch: int) -> Run:
    """Submit every file, then drain the queue with the batching worker; the texts it embedded are kept."""
    from ingest import documents as docs
    from ingest.config import EmbedderSettings, Settings
    from ingest.runtime import build_components
    from ingest.worker import drain

    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(data_dir=data_dir, embedder=EmbedderSettings(batch_size=batch))
    recorder = _Recording(embedder)
    components = build_components(settings, embedder=recorder, parser=parser)
    try:
        started = time.perf_counter()
        ids = [_submit(docs, components, path) for path in files]
        submitted = time.perf_counter()
        before = _stage_totals()
        drain(components)
        finished = time.perf_counter()
        stages = {k: round(v - before.get(k, 0.0), 2) for k, v in _stage_totals().items()}
        rows = [docs.get_document(components, TENANT, i) for i in ids]
    finally:
        components.close()
    ready = [d for d in rows if d.status == "ready"]
    return Run(
        label,
        len(rows),
        len(rows) - len(ready),
        sum(d.chunk_count for d in ready),
        sum(d.pages or 0 for d in ready),
        submitted - started,
        finished - submitted,
        stages,
        recorder.texts,
    )


class _Recording:
    """The embedder as the pipeline sees it, keeping the passage texts it was given (in order)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return self.inner.embed_passages(texts)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _submit(docs: Any, components: Any, path: Path) -> str:
    upload = docs.Upload(
        filename=path.name, data=path.read_bytes(), tenant=TENANT, collection=COLLECTION, title=path.name
    )
    return str(docs.submit(components, upload).document.id)


def _stage_totals() -> dict[str, float]:
    """Seconds spent per pipeline stage so far (the telemetry histogram's sums)."""
    from ingest.telemetry import STAGE_SECONDS

    totals: dict[str, float] = {}
    for metric in STAGE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_sum") and sample.labels.get("stage", "").startswith("ingest."):
                totals[sample.labels["stage"]] = sample.value
    return totals


def bare_embedder(embedder: Any, texts: list[str], batch: int) -> float:
    """Seconds the embedder alone needs for ``texts`` in batches of ``batch`` (dense vectors only)."""
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        embedder.embed_passages(texts[i : i + batch])
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder
    from ingest.parsing.isolated import IsolatedParser
    from ingest.parsing.unstructured_parser import UnstructuredParser

    corpus = write_corpus(args, args.work_dir / "corpus")
    embedder, parser, isolated = (
        SentenceTransformerEmbedder(batch_size=args.forward_batch),
        UnstructuredParser(),
        IsolatedParser(),
    )
    embedder.warm_up()
    parser.warm_up()
    isolated.warm_up()
    if corpus["pdf"]:  # the child warm before anything is timed, as in a service
        isolated.parse(corpus["pdf"][0].read_bytes(), corpus["pdf"][0].name)
    say(f"text corpus: {len(corpus['text'])} files; PDFs: {len(corpus['pdf'])}")
    text = run_pipeline(
        "contracts + abstracts", corpus["text"], args.work_dir / "data-text", embedder, parser, args.batch
    )
    say(f"pipeline: {text.chunks} chunks in {text.process_s:.1f} s; now the bare embedder on the same texts")
    bare_s = bare_embedder(embedder, text.texts, args.batch)
    pdf = pdf_isolated = None
    if corpus["pdf"]:
        pdf = run_pipeline("CUAD PDFs", corpus["pdf"], args.work_dir / "data-pdf", embedder, parser, args.batch)
        pdf_isolated = run_pipeline(
            "CUAD PDFs, isolated parser", corpus["pdf"], args.work_dir / "data-pdf", embedder, isolated, args.batch
        )
    child_rss = _peak_rss_mib(isolated.child_pid)
    say(f"the parser child's peak RSS: {child_rss} MiB")
    isolated.close()
    result = _result(args, text, bare_s, pdf, pdf_isolated, child_rss)
    print(_table(result))
    path = write_json(args.name, result)
    say(f"wrote {path}")
    return result


def _result(
    args: argparse.Namespace,
    text: Run,
    bare_s: float,
    pdf: Run | None,
    pdf_isolated: Run | None,
    child_peak_rss_mib: float | None = None,
) -> dict[str, Any]:
    bare_rate = len(text.texts) / bare_s if bare_s else 0.0
    out: dict[str, Any] = {
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "text": {
            "documents": text.documents,
            "failed": text.failed,
            "chunks": text.chunks,
            "submit_s": round(text.submit_s, 2),
            "process_s": round(text.process_s, 2),
            "pipeline_chunks_per_s": round(text.chunks_per_s, 1),
            "pipeline_chunks_per_s_with_submit": round(text.chunks / (text.submit_s + text.process_s), 1),
            "bare_embedder_s": round(bare_s, 2),
            "bare_embedder_chunks_per_s": round(bare_rate, 1),
            "ratio_pipeline_to_bare": ratio(text.chunks_per_s, bare_rate),
            "stage_seconds": text.stages_s,
        },
    }
    if pdf is not None:
        out["pdf"] = _pdf_result(pdf)
        out["pdf"]["parse_pages_per_s"] = ratio(pdf.pages, pdf.stages_s.get("ingest.parse"))  # the parser alone
    if pdf is not None and pdf_isolated is not None:
        out["pdf_isolated"] = _pdf_result(pdf_isolated)  # stage ingest.parse: waiting for the child, not its CPU
        out["pdf_isolated"]["ratio_to_in_process"] = ratio(pdf.process_s, pdf_isolated.process_s)
        out["pdf_isolated"]["child_peak_rss_mib"] = child_peak_rss_mib
    return out


def _pdf_result(run: Run) -> dict[str, Any]:
    return {
        "documents": run.documents,
        "failed": run.failed,
        "pages": run.pages,
        "chunks": run.chunks,
        "process_s": round(run.process_s, 2),
        "pages_per_s": round(run.pages / run.process_s, 2),
        "chunks_per_s": round(run.chunks_per_s, 1),
        "stage_seconds": run.stages_s,
    }


def _peak_rss_mib(pid: int | None) -> float | None:
    """A live process's peak resident memory (Linux ``VmHWM``), in MiB; None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, TypeError):
        return None
    return round(kib / 1024, 1)


def _table(result: dict[str, Any]) -> str:
    t = result["text"]
    rows: list[list[Any]] = [
        [
            "pipeline (contracts + abstracts)",
            t["documents"],
            t["chunks"],
            t["process_s"],
            t["pipeline_chunks_per_s"],
            "",
        ],
        [
            "bare embedder, same texts and batch",
            "",
            t["chunks"],
            t["bare_embedder_s"],
            t["bare_embedder_chunks_per_s"],
            "",
        ],
        ["ratio pipeline / bare (target ≥ 0.9)", "", "", "", t["ratio_pipeline_to_bare"], ""],
    ]
    if "pdf" in result:
        p = result["pdf"]
        rows.append(_pdf_row("pipeline (CUAD PDFs, parsed in the worker)", p))
        parse_s = p["stage_seconds"].get("ingest.parse")
        rows.append(["parser alone (CUAD PDFs)", p["documents"], "", parse_s, "", p["parse_pages_per_s"]])
    if "pdf_isolated" in result:
        q = result["pdf_isolated"]
        rows.append(_pdf_row("pipeline, isolated parser (default)", q))
        rows.append(["ratio in-process / isolated seconds", "", "", "", "", q["ratio_to_in_process"]])
    return format_table(["run", "documents", "chunks", "seconds", "chunks/s", "pages/s"], rows)


def _pdf_row(label: str, run: dict[str, Any]) -> list[Any]:
    return [label, run["documents"], run["chunks"], run["process_s"], run["chunks_per_s"], run["pages_per_s"]]


if __name__ == "__main__":
    main()

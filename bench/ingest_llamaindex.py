"""Enclave's ingestion pipeline next to LlamaIndex's, on the same corpus, model and kind of index, in one run.

* Enclave: ``enclave ingest``'s own path (``service.cli.ingesting.ingest_files``): submit → parse →
  chunk (≤ 200 MiniLM tokens) → dense + BM25 vectors → Qdrant Edge upsert → SQLite rows.
* LlamaIndex: ``SimpleDirectoryReader`` → ``IngestionPipeline([SentenceSplitter(200, 24) with the
  MiniLM tokenizer, HuggingFaceEmbedding(the packaged all-MiniLM-L6-v2, batch 64)])``, then the nodes
  upserted into a Qdrant Edge shard (dense vectors + text payload) — the same engine Enclave uses.

Each pipeline runs in its own child process (peak RSS is its own); model loading is excluded from
both clocks. The corpus is real: CUAD contracts (plain text) and SciFact abstracts (one file each),
optionally CUAD PDFs. The headline ratio is corpus bytes per second (independent of how each
splitter counts chunks). LlamaIndex stores no sparse vectors, payload indexes or relational rows,
so the comparison favours it. LlamaIndex runs with embed batches of 64 and of 16 (Enclave's forward
batch; it embeds 64 texts at a time in sorted runs of 16): the ratio is over its faster run.

    .venv/bin/python -m bench.ingest_llamaindex                  # 20 contracts + 300 abstracts
    .venv/bin/python -m bench.ingest_llamaindex --pdfs 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import DATA, REPO, format_table, ratio, say, write_json

CHUNK_TOKENS, OVERLAP_TOKENS, BATCH = 200, 24, 64
# pipeline → extra environment of its child process
PIPELINES: dict[str, dict[str, str]] = {
    "enclave": {},  # the default: PII redaction on (Presidio + spaCy), payloads and originals encrypted
    "llamaindex": {},  # HuggingFaceEmbedding(embed_batch_size=64)
    "llamaindex-batch16": {"BENCH_LLAMAINDEX_BATCH": "16"},  # Enclave's forward batch, for LlamaIndex too
    "enclave-noredact": {"ENCLAVE_COMPLIANCE__REDACTION_ENABLED": "false"},  # what LlamaIndex does not do either
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contracts", type=int, default=20, help="CUAD plain-text contracts")
    p.add_argument("--abstracts", type=int, default=300, help="SciFact abstracts (one .txt file each)")
    p.add_argument("--pdfs", type=int, default=0, help="CUAD PDF filings (parsed by each pipeline's own reader)")
    p.add_argument("--order", default=",".join(PIPELINES), help="pipelines, in running order")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/enclave-bench/ingest-llamaindex"))
    p.add_argument("--name", default="ingest_llamaindex", help="results file name (bench/results/<name>.json)")
    p.add_argument("--child", choices=list(PIPELINES), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build_corpus(args: argparse.Namespace, target: Path, data: Path = DATA) -> list[Path]:
    """Copy the chosen files into one folder (both pipelines read exactly these bytes)."""
    target.mkdir(parents=True, exist_ok=True)
    files = [
        shutil.copy2(p, target / p.name) for p in sorted((data / "cuad" / "contracts").glob("*.txt"))[: args.contracts]
    ]
    files += [shutil.copy2(p, target / p.name) for p in sorted((data / "cuad" / "pdf").glob("*.pdf"))[: args.pdfs]]
    with (data / "scifact" / "corpus.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= args.abstracts:
                break
            row = json.loads(line)
            path = target / f"scifact-{row['_id']}.txt"
            path.write_text(f"{row['title']}\n\n{row['text']}\n", encoding="utf-8")
            files.append(path)
    return [Path(f) for f in files]


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- children --------------------------------------------------------------------------------------
def run_enclave(files: Sequence[Path], work: Path, name: str = "enclave") -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import Progress

    from ingest.config import Settings
    from ingest.runtime import build_components
    from service.cli.ingesting import ingest_files

    # as `enclave ingest` builds them: the parser's process starts with the first PDF or office file, if any
    components = build_components(Settings(data_dir=work / name), warm_parser=False)
    components.compliance.redactor.warm_up()  # the PII models load outside the clock, like the embedders
    warm_rss = peak_rss_mib()
    started = time.perf_counter()
    results = ingest_files(
        components, list(files), "default", "internal", Progress(console=Console(stderr=True), disable=True)
    )
    components.index.flush()
    seconds = time.perf_counter() - started
    components.close()
    failed = [str(r.path.name) for r in results if r.outcome == "failed"]
    return {
        "seconds": round(seconds, 2),
        "documents": len(results) - len(failed),
        "failed": failed,
        "chunks": sum(r.chunks for r in results),
        "warm_rss_mib": warm_rss,
        "peak_rss_mib": peak_rss_mib(),
    }


def run_llamaindex(files: Sequence[Path], work: Path, name: str = "llamaindex") -> dict[str, Any]:
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers import AutoTokenizer

    from ingest.embedding.sentence_transformers_embedder import packaged_model_path

    model = packaged_model_path()
    splitter = SentenceSplitter(
        chunk_size=CHUNK_TOKENS,
        chunk_overlap=OVERLAP_TOKENS,
        tokenizer=AutoTokenizer.from_pretrained(str(model)).tokenize,
    )
    batch = int(os.environ.get("BENCH_LLAMAINDEX_BATCH", BATCH))
    embedding = HuggingFaceEmbedding(model_name=str(model), device="cpu", embed_batch_size=batch)
    embedding.get_text_embedding("warm up")
    shard = _edge_shard(work / name / "index")
    warm_rss = peak_rss_mib()
    started = time.perf_counter()
    documents = SimpleDirectoryReader(input_files=[str(f) for f in files]).load_data()
    nodes = IngestionPipeline(transformations=[splitter, embedding]).run(documents=documents)
    pipeline_s = time.perf_counter() - started
    _upsert_nodes(shard, nodes)
    seconds = time.perf_counter() - started
    shard.close()
    return {
        "seconds": round(seconds, 2),
        "pipeline_seconds": round(pipeline_s, 2),
        "documents": len(files),
        "chunks": len(nodes),
        "warm_rss_mib": warm_rss,
        "peak_rss_mib": peak_rss_mib(),
    }


def _edge_shard(path: Path) -> Any:
    import qdrant_edge as qe

    path.mkdir(parents=True, exist_ok=True)
    return qe.EdgeShard.create(
        str(path),
        qe.EdgeConfig(
            vectors={"dense": qe.EdgeVectorParams(size=384, distance=qe.Distance.Cosine)},
            hnsw_config=qe.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
        ),
    )


def _upsert_nodes(shard: Any, nodes: Sequence[Any]) -> None:
    import qdrant_edge as qe

    for i in range(0, len(nodes), 256):
        points = [
            qe.Point(
                id=n.node_id,
                vector={"dense": list(n.embedding)},
                payload={"text": n.get_content(), "doc_id": n.ref_doc_id, **n.metadata},
            )
            for n in nodes[i : i + 256]
        ]
        shard.update(qe.UpdateOperation.upsert_points(points))
    shard.flush()


def child_main(args: argparse.Namespace) -> None:
    files = sorted((args.work_dir / "corpus").iterdir())
    if args.child.startswith("llamaindex"):
        print(json.dumps(run_llamaindex(files, args.work_dir, args.child)))
    else:
        print(json.dumps(run_enclave(files, args.work_dir, args.child)))


# -- parent ----------------------------------------------------------------------------------------
def run_child(name: str, work: Path) -> dict[str, Any]:
    say(f"  {name} pipeline …")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.ingest_llamaindex", "--child", name, "--work-dir", str(work)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=3600,
        env={**os.environ, **PIPELINES[name]},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the {name} pipeline failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    say(f"    {result['seconds']} s, {result['chunks']} chunks, peak RSS {result['peak_rss_mib']} MiB")
    return result


def report(result: dict[str, Any]) -> str:
    corpus_mb = result["corpus"]["bytes"] / 1e6
    rows = []
    for name in result["order"]:
        r = result[name]
        rows.append(
            [
                name,
                r["documents"],
                r["chunks"],
                r["seconds"],
                round(corpus_mb / r["seconds"], 3),
                round(r["documents"] / r["seconds"], 2),
                round(r["chunks"] / r["seconds"], 1),
                r["peak_rss_mib"],
            ]
        )
    head = (
        f"Ingestion, same corpus ({result['corpus']['files']} files, {corpus_mb:.1f} MB: CUAD contracts + SciFact "
        f"abstracts{' + PDFs' if result['corpus']['pdfs'] else ''}), same model, Qdrant Edge for both"
    )
    table = format_table(["pipeline", "docs", "chunks", "seconds", "MB/s", "docs/s", "chunks/s", "peak RSS MiB"], rows)
    ratios = ", ".join(f"{name} {r}" for name, r in result.get("ratio_over_llamaindex", {}).items())
    best = result.get("llamaindex_best", "llamaindex")
    return f"{head}\n{table}\nThroughput (MB/s) over LlamaIndex's fastest run ({best}): {ratios} (target ≥ 2)"


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return None
    started = time.perf_counter()
    shutil.rmtree(args.work_dir, ignore_errors=True)
    files = build_corpus(args, args.work_dir / "corpus")
    result: dict[str, Any] = {
        "corpus": {
            "files": len(files),
            "bytes": sum(f.stat().st_size for f in files),
            "pdfs": args.pdfs,
            "contracts": args.contracts,
            "abstracts": args.abstracts,
        },
        "settings": {"chunk_tokens": CHUNK_TOKENS, "overlap_tokens": OVERLAP_TOKENS, "batch": BATCH},
    }
    result["order"] = args.order.split(",")
    for name in result["order"]:
        result[name] = run_child(name, args.work_dir)
    llama = [name for name in result["order"] if name.startswith("llamaindex")]
    if llama:  # against LlamaIndex's fastest run of those made (by embed batch)
        result["llamaindex_best"] = min(llama, key=lambda name: result[name]["seconds"])
        result["ratio_over_llamaindex"] = {
            name: ratio(result[result["llamaindex_best"]]["seconds"], result[name]["seconds"])
            for name in result["order"]
            if name not in llama
        }
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    text = report(result)
    print(text)
    say(f"wrote {write_json(args.name, {**result, 'table': text})}")
    return result


if __name__ == "__main__":
    main()

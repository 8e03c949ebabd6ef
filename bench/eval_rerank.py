"""Does a reranking stage help? MMR (and, when a site serves one, a vLLM reranker) against the fused ranking.

    .venv/bin/python -m bench.eval_rerank --dataset scifact --split test --lambdas 0.5,0.7,0.9
    .venv/bin/python -m bench.eval_rerank --vllm http://reranker:8000   # a served cross-encoder too

Scores the same cached ``enclave eval`` index (``--data-dir``) with and without the reranker; writes
bench/results/eval-rerank-DATASET.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.common import CACHE, DATA, RESULTS
from ingest.config import Settings
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder
from service.evaluation.corpus_index import open_eval_index
from service.evaluation.datasets import load_dataset
from service.evaluation.runner import evaluate
from service.rerank.mmr import MmrReranker
from service.rerank.vllm_reranker import VllmReranker

METRICS = ("ndcg@10", "recall@10", "mrr@10", "span_recall@10", "span_precision@10", "latency_p50_ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--split", default="test")
    parser.add_argument("--lambdas", default="0.5,0.7,0.9")
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--vllm", default=None, help="base URL of a vLLM server with a reranking model")
    parser.add_argument("--data-dir", type=Path, default=CACHE / "eval-data")
    args = parser.parse_args()
    dataset = load_dataset(DATA / args.dataset, args.split)
    embedder = SentenceTransformerEmbedder()
    embedder.warm_up()
    stack = open_eval_index(dataset, Settings(data_dir=args.data_dir), embedder)  # type: ignore[call-arg]
    runs: dict[str, Any] = {"fused (no reranker)": evaluate(dataset, stack, "hybrid")}
    for value in (float(x) for x in args.lambdas.split(",")):
        mmr = MmrReranker(stack.sparse, value, args.candidates)
        runs[f"mmr lambda={value}"] = evaluate(dataset, stack, "hybrid", reranker=mmr)
    if args.vllm:
        runs["vllm /rerank"] = evaluate(
            dataset, stack, "hybrid", reranker=VllmReranker(args.vllm, candidates=args.candidates)
        )
    stack.close()
    table = {name: {m: r[m] for m in METRICS if m in r} for name, r in runs.items()}
    print(f"{'ranking':<24}" + "".join(f"{m:>18}" for m in METRICS if m in next(iter(table.values()))))
    for name, row in table.items():
        print(f"{name:<24}" + "".join(f"{v:>18}" for v in row.values()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"eval-rerank-{args.dataset}.json"
    out.write_text(
        json.dumps({"dataset": args.dataset, "split": args.split, "time": time.time(), "runs": table}, indent=1)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

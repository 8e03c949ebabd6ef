"""One query at a time: the default query path (ONNX Runtime fp32 on an export of the MiniLM weights)
against PyTorch fp32 and bf16 autocast, on the same real questions, in one process. Then the default
ONNX session against one whose threads spin between runs (ONNX Runtime's own default), in blocks of
all questions each (threads that spin on would slow whatever ran next to them).

Each round embeds every question once with each path, the paths alternating question by question, so
a busy machine slows them alike; latency percentiles are over all rounds, and the process CPU per query
includes a 5 ms gap after each (threads that spin on after a query burn CPU there). Then the cosine of each
path's vector to PyTorch fp32's for every question (the index holds the PyTorch embedder's vectors).

    .venv/bin/python -m bench.query_embedders                 # 200 questions, 3 rounds (~1 min on 2 cores)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import format_table, percentiles, ratio, real_queries, say, write_json
from ingest.embedding.onnx_embedder import OnnxEmbedder, OnnxQueries
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder, torch_autocast

REFERENCE = "torch fp32"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/enclave-bench/models"), help="ONNX exports")
    p.add_argument("--name", default="query-embedders", help="results file name (bench/results/<name>.json)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch_fp32 = SentenceTransformerEmbedder(precision="fp32")
    default = OnnxQueries(
        torch_fp32, OnnxEmbedder(args.cache_dir / "onnx", precision="fp32", batch_size=1, spinning=False)
    )
    default.warm_up()
    started = time.perf_counter()
    if not default.warm_up_queries():
        raise SystemExit("the ONNX query path did not start or did not match PyTorch: see the warning above")
    onnx_start_s = time.perf_counter() - started

    def bf16(text: str) -> list[float]:
        with torch_autocast(True):
            return torch_fp32.embed_query(text)

    paths: dict[str, Callable[[str], list[float]]] = {
        REFERENCE: torch_fp32.embed_query,
        "torch bf16 autocast": bf16,
        "onnx fp32 (default)": default.embed_query,
    }
    questions = real_queries(n=args.queries)
    for text in questions[:20]:  # first-call costs
        for embed in paths.values():
            embed(text)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, float] = dict.fromkeys(paths, 0.0)
    for round_ in range(args.rounds):
        say(f"  round {round_ + 1}/{args.rounds}")
        for text in questions:
            for name, embed in paths.items():
                c0, t0 = time.process_time(), time.perf_counter()
                embed(text)
                samples[name].append((time.perf_counter() - t0) * 1000)
                time.sleep(0.005)  # a gap, as between requests: threads that spin on after a query show in CPU
                cpu[name] += time.process_time() - c0
    exact = np.array([torch_fp32.embed_query(q) for q in questions])
    rows, report = [], {}
    for name, embed in paths.items():
        cosine = (np.array([embed(q) for q in questions]) * exact).sum(axis=1)
        stats = percentiles(samples[name])
        cpu_ms = round(1000 * cpu[name] / len(samples[name]), 2)
        report[name] = {
            "latency_ms": stats,
            "cpu_ms_per_query": cpu_ms,
            "cosine_to_fp32": {"min": float(cosine.min()), "p1": float(np.percentile(cosine, 1))},
        }
        speed = ratio(percentiles(samples[REFERENCE])["mean"], stats["mean"])
        rows.append([name, stats["p50"], stats["p95"], stats["mean"], speed, cpu_ms, f"{cosine.min():.6f}"])
    print(
        format_table(
            [
                "query path",
                "p50 ms",
                "p95 ms",
                "mean ms",
                f"× {REFERENCE} (mean)",
                "CPU ms/query",
                "min cosine to fp32",
            ],
            rows,
        )
    )
    print(f"ONNX query path start (export or load, probes checked): {onnx_start_s:.1f} s")
    spinning = OnnxEmbedder(args.cache_dir / "onnx", precision="fp32", batch_size=1, spinning=True)
    spinning.warm_up()
    blocks = {"onnx fp32 (default)": default.embed_query, "onnx fp32, threads spinning": spinning.embed_query}
    block_cpu: dict[str, list[float]] = {name: [] for name in blocks}
    block_ms: dict[str, list[float]] = {name: [] for name in blocks}
    for _ in range(args.rounds):
        for name, embed in blocks.items():
            for text in questions:
                c0, t0 = time.process_time(), time.perf_counter()
                embed(text)
                block_ms[name].append((time.perf_counter() - t0) * 1000)
                time.sleep(0.005)
                block_cpu[name].append((time.process_time() - c0) * 1000)
    spin = {
        name: {"latency_ms": percentiles(block_ms[name]), "cpu_ms_per_query": round(sum(v) / len(v), 2)}
        for name, v in block_cpu.items()
    }
    print(
        format_table(
            ["ONNX threads (blocks)", "p50 ms", "mean ms", "CPU ms/query"],
            [[n, r["latency_ms"]["p50"], r["latency_ms"]["mean"], r["cpu_ms_per_query"]] for n, r in spin.items()],
        )
    )
    result = {
        "benchmark": "query-embedders",
        "queries": len(questions),
        "rounds": args.rounds,
        "onnx_start_s": round(onnx_start_s, 2),
        "paths": report,
        "spinning": spin,
    }
    print(f"wrote {write_json(args.name, result)}")
    return result


if __name__ == "__main__":
    main()

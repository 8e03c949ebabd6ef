"""Qdrant Edge's search pool: one thread per search against the library's one per CPU, side by side.

Needs a data directory built by bench/query.py; it runs on a copy. Each round opens the index with
each pool size in turn (``ENCLAVE_INDEX__SEARCH_THREADS``) and measures, with the reader's access filter
and the 200 real questions embedded beforehand (index search only, hybrid, k = 10):

- one search at a time: ms per search (median and mean);
- 4 and 16 threads searching at once: searches per second.

    .venv/bin/python -m bench.query --sizes 100k --no-quantized    # builds /tmp/enclave-bench/query/100k
    .venv/bin/python -m bench.search_threads --data /tmp/enclave-bench/query/100k/data
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import format_table, real_queries, say, write_json
from bench.server import READER_GROUPS
from ingest.config import IndexSettings, Settings
from ingest.index.port import AccessFilter, SparseVector, VectorIndex
from ingest.runtime import build_components


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("/tmp/enclave-bench/query/100k/data"))
    p.add_argument("--pools", default=f"1,{os.cpu_count() or 1}", help="search pool sizes to compare")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--searches", type=int, default=400, help="one-at-a-time searches per pool size and round")
    p.add_argument("--seconds", type=float, default=5.0, help="per concurrent run")
    p.add_argument("--name", default="search-threads")
    return p.parse_args(argv)


Query = tuple[list[float], SparseVector]


def one_at_a_time(index: VectorIndex, queries: Sequence[Query], access: AccessFilter, n: int) -> list[float]:
    times = []
    for i in range(n):
        dense, sparse = queries[i % len(queries)]
        started = time.perf_counter()
        index.search(dense, sparse, access, 10, "hybrid", best_dense=False)
        times.append(time.perf_counter() - started)
    return times


def at_once(index: VectorIndex, queries: Sequence[Query], access: AccessFilter, threads: int, seconds: float) -> float:
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def run(k: int) -> None:
        i = k * 7
        while time.perf_counter() < stop:
            dense, sparse = queries[i % len(queries)]
            index.search(dense, sparse, access, 10, "hybrid", best_dense=False)
            done[k] += 1
            i += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    pools = [int(p) for p in args.pools.split(",")]
    copy = args.data.parent / f"{args.data.name}-search-threads"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(args.data, copy, ignore=shutil.ignore_patterns("generator"))
    access = AccessFilter(tenant="default", principal_user="bench-reader", principal_groups=READER_GROUPS)
    times: dict[int, list[float]] = {p: [] for p in pools}
    rates: dict[int, dict[int, list[float]]] = {p: {4: [], 16: []} for p in pools}
    try:
        queries: list[Query] = []
        for r in range(args.rounds):
            for pool in pools:
                settings = Settings(data_dir=copy, index=IndexSettings(search_threads=pool))
                components = build_components(settings)
                try:
                    if not queries:
                        embed, terms = components.embedder.embed_query, components.sparse.embed_query
                        queries = [(embed(q), terms(q)) for q in real_queries(n=200)]
                    one_at_a_time(components.index, queries, access, len(queries))  # warm: term counts, pages
                    times[pool] += one_at_a_time(components.index, queries, access, args.searches)
                    for threads in (4, 16):
                        rates[pool][threads].append(at_once(components.index, queries, access, threads, args.seconds))
                finally:
                    components.close()
                say(f"  round {r + 1}, pool {pool}: {statistics.median(times[pool]) * 1000:.2f} ms median so far")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    rows = [
        [
            pool,
            round(statistics.median(times[pool]) * 1000, 3),
            round(statistics.fmean(times[pool]) * 1000, 3),
            round(statistics.fmean(rates[pool][4]), 1),
            round(statistics.fmean(rates[pool][16]), 1),
        ]
        for pool in pools
    ]
    text = format_table(["search pool", "ms/search p50", "mean", "searches/s at 4", "at 16"], rows)
    print(text)
    result = {
        "data": str(args.data),
        "rounds": args.rounds,
        "rows": rows,
        "rates": {str(p): {str(t): [round(x, 1) for x in v] for t, v in r.items()} for p, r in rates.items()},
        "table": text,
    }
    say(f"wrote {write_json(args.name, result)}")
    return result


if __name__ == "__main__":
    main()

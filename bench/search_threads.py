"""Qdrant Edge's search pool: one thread per search against the library's one per CPU, side by side.

Needs a data directory built by bench/query.py; it runs on a copy. Each round opens the index with
each pool size in turn (``ENCLAVE_INDEX__SEARCH_THREADS``) and measures, with the reader's access filter
and the 200 real questions embedded beforehand (index search only, hybrid, k = 10):

- one search at a time: ms per search (median and mean);
- 4 and 16 threads searching at once: searches per second
(each a closed loop of ``--seconds``, bench/loadgen.py).

    .venv/bin/python -m bench.query --sizes 100k --no-quantized    # builds /tmp/enclave-bench/query/100k
    .venv/bin/python -m bench.search_threads --data /tmp/enclave-bench/query/100k/data
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import format_table, real_queries, say, write_json
from bench.loadgen import Request, WorkerFactory, run_closed_loop
from bench.server import READER_GROUPS
from ingest.config import IndexSettings, Settings
from ingest.index.port import AccessFilter, SparseVector, VectorIndex
from ingest.runtime import build_components


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("/tmp/enclave-bench/query/100k/data"))
    p.add_argument("--pools", default=f"1,{os.cpu_count() or 1}", help="search pool sizes to compare")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0, help="per run: one at a time, 4 at once, 16 at once")
    p.add_argument("--name", default="search-threads")
    return p.parse_args(argv)


Query = tuple[list[float], SparseVector]


def searches(index: VectorIndex, queries: Sequence[Query], access: AccessFilter) -> WorkerFactory:
    """Index searches only (hybrid, k = 10), each client starting at its own place in the questions."""

    def make(client: int) -> Request:
        def request(i: int) -> str:
            dense, sparse = queries[(i + client * 7) % len(queries)]
            index.search(dense, sparse, access, 10, "hybrid", best_dense=False)
            return "search"

        return request

    return make


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
                    factory = searches(components.index, queries, access)
                    warm = factory(0)
                    for i in range(len(queries)):  # term counts, pages
                        warm(i)
                    times[pool] += run_closed_loop(factory, 1, args.seconds, warmup=0).latencies_ms["search"]
                    for threads in (4, 16):
                        rates[pool][threads].append(
                            run_closed_loop(factory, threads, args.seconds, warmup=0).throughput
                        )
                finally:
                    components.close()
                say(f"  round {r + 1}, pool {pool}: {statistics.median(times[pool]):.2f} ms median so far")
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    rows = [
        [
            pool,
            round(statistics.median(times[pool]), 3),
            round(statistics.fmean(times[pool]), 3),
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

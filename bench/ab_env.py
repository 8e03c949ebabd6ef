"""A/B of one server environment setting: two `enclave serve` processes on copies of the same data,
measured in alternation (A B A B …) so that noise from other processes hits both alike.

Used for the before/after of ``OMP_WAIT_POLICY`` (set to PASSIVE by ``ingest/__init__.py``; an empty
value restores libgomp's default spinning):

    .venv/bin/python -m bench.ab_env --data /tmp/enclave-bench/query/100k/data --a OMP_WAIT_POLICY= --b ""
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import format_table, ratio, real_queries, say, write_json
from bench.query import http_factory, interleaved, settle
from bench.server import UNTHROTTLED, Keys, ServeProcess


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="a data directory built by bench/query.py")
    p.add_argument("--a", default="OMP_WAIT_POLICY=", help="KEY=VALUE[,KEY=VALUE] for server A ('' for none)")
    p.add_argument("--b", default="", help="KEY=VALUE[,KEY=VALUE] for server B ('' for none)")
    p.add_argument("--clients", default="1,4,16")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--name", default="ab_env")
    return p.parse_args(argv)


def env_of(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if part)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    copy = args.data.parent / f"{args.data.name}-ab-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(args.data, copy, ignore=shutil.ignore_patterns("generator"))
    queries = real_queries(n=200)
    rows, runs = [], []
    try:
        with (
            ServeProcess(args.data, Keys(), {**UNTHROTTLED, **env_of(args.a)}) as a,
            ServeProcess(copy, Keys(), {**UNTHROTTLED, **env_of(args.b)}) as b,
        ):
            for srv in (a, b):
                settle(srv.url, srv.headers(), queries)
            factories = {
                f"A {args.a or '(none)'}": http_factory(a.url, a.headers(), queries, 10, "hybrid"),
                f"B {args.b or '(none)'}": http_factory(b.url, b.headers(), queries, 10, "hybrid"),
            }
            for c in (int(x) for x in args.clients.split(",")):
                res = interleaved(factories, c, args.duration, 1.0, args.rounds)
                (ra, rb) = res.values()
                runs.append({"clients": c, **res})
                rows.append(
                    [
                        c,
                        ra["latency_ms"]["p50"],
                        ra["latency_ms"]["p95"],
                        ra["throughput_rps"],
                        rb["latency_ms"]["p50"],
                        rb["latency_ms"]["p95"],
                        rb["throughput_rps"],
                        ratio(rb["throughput_rps"], ra["throughput_rps"]),
                    ]
                )
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    text = f"A: {args.a or '(none)'}   B: {args.b or '(none)'}   ({args.data})\n" + format_table(
        ["clients", "A p50 ms", "A p95", "A req/s", "B p50 ms", "B p95", "B req/s", "B/A req/s"], rows
    )
    print(text)
    result = {"a": args.a, "b": args.b, "data": str(args.data), "runs": runs, "table": text}
    say(f"wrote {write_json(args.name, result)}")
    return result


if __name__ == "__main__":
    main()

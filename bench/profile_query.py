"""Profile query serving: py-spy samples `enclave serve` while clients call ``POST /v1/search``.

Needs an index built by bench/query.py (``--keep``-style: its work directory stays after a run).
Writes a speedscope profile and a flat "top functions" table (own time and total time by function)
to bench/results/profile-<name>.{json,txt}.

    .venv/bin/python -m bench.query --sizes 100k --no-quantized        # builds /tmp/enclave-bench/query/100k
    .venv/bin/python -m bench.profile_query --data /tmp/enclave-bench/query/100k/data
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import RESULTS, real_queries, say
from bench.loadgen import run_closed_loop
from bench.query import http_factory, settle
from bench.server import UNTHROTTLED, Keys, ServeProcess, create_reader_key


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("/tmp/enclave-bench/query/100k/data"))
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    p.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL (Python overhead)")
    p.add_argument("--name", default="search")
    return p.parse_args(argv)


def flat_profile(speedscope: dict[str, Any], top: int = 25) -> list[tuple[str, float, float]]:
    """(function, own %, total %) from a speedscope 'sampled' profile, summed over all threads."""
    frames = speedscope["shared"]["frames"]
    own: Counter[int] = Counter()
    total: Counter[int] = Counter()
    samples = 0
    for prof in speedscope["profiles"]:
        for stack, weight in zip(prof["samples"], prof["weights"], strict=True):
            samples += weight
            if stack:
                own[stack[-1]] += weight
            for frame in set(stack):
                total[frame] += weight

    def label(i: int) -> str:
        f = frames[i]
        return f"{f['name']} ({Path(f.get('file', '?')).name}:{f.get('line', '?')})"

    rows = [(label(i), 100 * own[i] / samples, 100 * total[i] / samples) for i, _ in own.most_common(top)]
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        raise SystemExit("py-spy is missing: .venv/bin/pip install -e '.[bench]'")
    queries = real_queries(n=200)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"profile-{args.name}.json"
    keys = Keys()
    keys.reader = create_reader_key(args.data, keys)
    with ServeProcess(args.data, keys, UNTHROTTLED) as srv:
        settle(srv.url, srv.headers(), queries)
        spy = subprocess.Popen(
            [
                pyspy,
                "record",
                "--pid",
                str(srv.pid),
                "--rate",
                str(args.rate),
                "--format",
                "speedscope",
                "--output",
                str(out),
                "--duration",
                str(int(args.duration) + 2),
                "--nonblocking",
            ]
            + (["--gil"] if args.gil else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        run = run_closed_loop(
            http_factory(srv.url, srv.headers(), queries, 10, "hybrid"), args.clients, args.duration, 0
        )
        spy.wait(120)
    summary = run.summary()
    rows = flat_profile(json.loads(out.read_text()))
    lines = [
        f"{args.clients} clients, {summary['throughput_rps']} req/s, p50 {summary['latency_ms']['p50']} ms",
        f"{'own %':>7} {'total %':>8}  function",
    ] + [f"{o:7.1f} {t:8.1f}  {name}" for name, o, t in rows]
    text = "\n".join(lines)
    print(text)
    (RESULTS / f"profile-{args.name}.txt").write_text(text + "\n")
    say(f"wrote {out}")


if __name__ == "__main__":
    main()

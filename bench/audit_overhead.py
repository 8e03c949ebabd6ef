"""What the audit trail costs a request: chain appends alone, and a search with and without its record.

1. ``append``: one ``query.answered``-shaped record (chunk ids, sealed query) per transaction, one
   writer, then four threads at once (the chain lock serialises them).
2. ``search``: the read path a ``POST /v1/search`` runs (embed, hybrid search, decrypt) over a small
   CUAD index, alone and followed by its audit record; the difference is the per-request overhead.

    .venv/bin/python bench/audit_overhead.py [--n 300]   # table + bench/results/audit_overhead.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest import documents as docs  # noqa: E402
from ingest.audit.trail import Actor, AuditEvent  # noqa: E402
from ingest.config import Settings  # noqa: E402
from ingest.index.port import AccessFilter  # noqa: E402
from ingest.runtime import Components, build_components  # noqa: E402
from ingest.worker import drain  # noqa: E402
from service.retrieval import retrieve  # noqa: E402

DATA = Path(os.environ.get("ENCLAVE_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "bench" / "results" / "audit_overhead.json"
ACTOR = Actor("bench", "bench-user", ("reader",), "api_key", "req", "127.0.0.1")
QUERIES = [
    "governing law of this agreement",
    "termination for convenience notice period",
    "limitation of liability cap",
    "exclusivity and non-compete",
    "renewal term and expiration date",
    "audit rights of the licensor",
]


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "n": len(ordered),
    }


def event(i: int) -> AuditEvent:
    return AuditEvent(
        ACTOR,
        "query.answered",
        "answered",
        document_ids=[f"doc{i % 7}"],
        chunk_ids=[f"chunk-{i}-{j}" for j in range(3)],
        model="smollm2",
        query=QUERIES[i % len(QUERIES)],
        latency_ms=42,
    )


def concurrent_appends(components: Components, threads: int, per_thread: int) -> float:
    """Records per second with ``threads`` writers appending at once."""

    def work() -> None:
        for i in range(per_thread):
            components.compliance.audit.record(event(i))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * per_thread / (time.perf_counter() - started)


def interleaved(components: Components, n: int) -> tuple[list[float], list[float]]:
    """The same searches without and with their audit record, alternating, after a warm-up (drift hits both alike)."""
    access = AccessFilter(tenant="bench")

    def search(i: int, audit: bool) -> None:
        found = retrieve(components, QUERIES[i % len(QUERIES)], access, 10)
        if audit:
            components.compliance.audit.record(
                AuditEvent(
                    ACTOR,
                    "search.performed",
                    query=QUERIES[i % len(QUERIES)],
                    chunk_ids=[c.record.id for c in found.chunks],
                )
            )

    for i in range(20):
        search(i, i % 2 == 0)
    plain: list[float] = []
    audited: list[float] = []
    for i in range(n):
        for audit, samples in ((False, plain), (True, audited)) if i % 2 else ((True, audited), (False, plain)):
            started = time.perf_counter()
            search(i, audit)
            samples.append((time.perf_counter() - started) * 1000)
    return plain, audited


def index_some_contracts(components: Components, count: int) -> None:
    for path in sorted((DATA / "cuad" / "contracts").glob("*.txt"))[:count]:
        docs.submit(components, docs.Upload(filename=path.name, data=path.read_bytes(), tenant="bench", collection="c"))
    drain(components)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="enclave-audit-bench-") as scratch:
        components = build_components(Settings(data_dir=Path(scratch) / "data"))
        try:
            index_some_contracts(components, 8)
            append = summary(timed(lambda: components.compliance.audit.record(event(0)), args.n))
            rate = concurrent_appends(components, 4, args.n // 4)
            plain, audited = interleaved(components, args.n)
            search, with_audit = summary(plain), summary(audited)
            verify_started = time.perf_counter()
            verified = components.compliance.audit.verify()
            verify_s = time.perf_counter() - verify_started
        finally:
            components.close()
    overhead = with_audit["p50_ms"] - search["p50_ms"]
    report = {
        "append": append,
        "append_4_threads_per_s": round(rate, 1),
        "search": search,
        "search_with_audit": with_audit,
        "overhead_p50_ms": round(overhead, 3),
        "overhead_ratio_p50": round(with_audit["p50_ms"] / search["p50_ms"], 3),
        "verify": {"records": verified.records, "ok": verified.ok, "seconds": round(verify_s, 3)},
        "load_average": os.getloadavg(),
    }
    print(f"{'measure':<34} {'p50 ms':>8} {'p95 ms':>8}")
    for name in ("append", "search", "search_with_audit"):
        print(f"{name:<34} {report[name]['p50_ms']:>8.2f} {report[name]['p95_ms']:>8.2f}")
    print(
        f"audit overhead per search (p50): {overhead:.2f} ms ({report['overhead_ratio_p50']}x); "
        f"4 concurrent writers: {rate:.0f} records/s; verify {verified.records} records in {verify_s:.2f} s; "
        f"load average {report['load_average'][0]:.2f}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

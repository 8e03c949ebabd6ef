"""Closed-loop load: N client threads, each issuing one request after the other for a fixed time.

Bounded by construction: every worker stops at the deadline, and the whole run cannot outlast
``warmup + duration`` plus one request. Latencies of the warm-up are discarded.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import percentiles

# A worker factory gets the client number and returns a request function; the request function gets
# the request number and returns a kind label ("search", "query", …) or raises on failure.
Request = Callable[[int], str]
WorkerFactory = Callable[[int], Request]


@dataclass
class RunResult:
    clients: int
    seconds: float
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    succeeded_incl_warmup: int = 0  # for per-request CPU: the CPU clock cannot tell warm-up from measurement

    @property
    def completed(self) -> int:
        return sum(len(v) for v in self.latencies_ms.values())

    @property
    def throughput(self) -> float:
        return round(self.completed / self.seconds, 2) if self.seconds else 0.0

    def all_latencies(self) -> list[float]:
        return [x for v in self.latencies_ms.values() for x in v]

    def summary(self) -> dict[str, Any]:
        per_kind = {kind: percentiles(v) for kind, v in sorted(self.latencies_ms.items())}
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 2),
            "completed": self.completed,
            "throughput_rps": self.throughput,
            "latency_ms": percentiles(self.all_latencies()),
            "per_kind": per_kind,
            "errors": dict(self.errors),
            "error_samples": self.error_samples[:5],
        }


def run_closed_loop(factory: WorkerFactory, clients: int, duration: float, warmup: float = 1.0) -> RunResult:
    """Run ``clients`` workers for ``warmup + duration`` seconds; measure only after the warm-up."""
    result = RunResult(clients=clients, seconds=duration)
    lock = threading.Lock()
    counter = iter(range(10**12))
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    def worker(n: int) -> None:
        request = factory(n)
        while True:
            with lock:
                i = next(counter)
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            _one(request, i, t0, measure_from, result, lock)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = round(max(time.perf_counter(), stop_at) - measure_from, 3)
    return result


def _one(request: Request, i: int, t0: float, measure_from: float, result: RunResult, lock: threading.Lock) -> None:
    try:
        kind = request(i)
    except Exception as exc:  # noqa: BLE001 - a benchmark counts failures, it does not stop on them
        label = getattr(exc, "kind", "request")
        with lock:
            result.errors[label] = result.errors.get(label, 0) + 1
            if len(result.error_samples) < 20:
                result.error_samples.append(f"{type(exc).__name__}: {exc}"[:300] or traceback.format_exc(limit=1))
        return
    elapsed_ms = (time.perf_counter() - t0) * 1000
    with lock:
        result.succeeded_incl_warmup += 1
        if t0 >= measure_from:
            result.latencies_ms.setdefault(kind, []).append(elapsed_ms)


class RequestFailed(Exception):
    """A request answered with an unexpected status; ``kind`` says which request type failed."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

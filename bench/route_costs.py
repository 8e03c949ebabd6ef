"""Where one search's time goes: the bare loop, the route's work in-process, and HTTP, one request at a time.

Needs a data directory built by bench/query.py (its work directory stays after a run). The server
serves that directory and the in-process loops a copy (Qdrant Edge allows one process per index).
For ``--rounds`` rounds, each of the three runs ``--requests`` searches in turn, one after the other
(the three alternate so that the machine's load hits all alike):

- **bare**: embed the query and search the index inside the reader's access filter (bench/query.py's loop);
- **product**: what ``POST /v1/search`` does beyond it, without HTTP: the bearer key authenticated,
  the policy asked, :func:`service.routes.query.ranked_chunks` (document focus, audit record,
  snippets) and the response encoded to JSON;
- **http**: ``POST /v1/search`` to `enclave serve` over a kept-alive loopback connection.

Then the product's steps are timed one by one (each wrapped by a timer; a step's time excludes the
timed steps inside it, so the steps add up to the search, within the timers' own ~1 µs each).

    .venv/bin/python -m bench.query --sizes 100k --no-quantized    # builds /tmp/enclave-bench/query/100k
    .venv/bin/python -m bench.route_costs --data /tmp/enclave-bench/query/100k/data
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import psutil
from sqlmodel import col, select

from bench.common import format_table, real_queries, say, write_json
from bench.loadgen import WorkerFactory
from bench.query import bare_factory, http_factory, principal_access, product_factory, search_state
from bench.server import UNTHROTTLED, Keys, ServeProcess, create_reader_key
from ingest.config import Settings
from ingest.runtime import build_components
from service.state import AppState


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("/tmp/enclave-bench/query/100k/data"))
    p.add_argument("--requests", type=int, default=300, help="searches per loop and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--name", default="route-costs")
    return p.parse_args(argv)


def cpu_seconds(process: psutil.Process) -> float:
    t = process.cpu_times()
    return float(t.user + t.system)


def sequential(
    loops: dict[str, WorkerFactory], server: psutil.Process, n: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Per loop: wall ms per search, and CPU ms per search of this process and of the server. Each turn of a loop
    makes its request function anew (HTTP: a new connection, as uvicorn closes one idle for 5 s)."""
    me = psutil.Process()
    spent: dict[str, dict[str, float]] = {name: defaultdict(float) for name in loops}
    for r in range(rounds):
        for name, factory in loops.items():
            request = factory(0)
            wall0, mine0, srv0 = time.perf_counter(), cpu_seconds(me), cpu_seconds(server)
            for i in range(n):
                request(r * n + i)
            spent[name]["wall"] += time.perf_counter() - wall0
            spent[name]["bench"] += cpu_seconds(me) - mine0
            spent[name]["server"] += cpu_seconds(server) - srv0
            say(f"  round {r + 1} {name}: {spent[name]['wall'] * 1000 / ((r + 1) * n):.2f} ms per search so far")
    return {name: {k: round(v * 1000 / (n * rounds), 2) for k, v in s.items()} for name, s in spent.items()}


def lookup_after_wait(state: AppState, n: int) -> dict[str, float]:
    """Document focus's lookup of ten documents' openings (ms), back to back and right after the thread waited
    10 ms, as a request thread waits while Qdrant Edge's own threads search or ONNX Runtime's compute."""
    from ingest.documents import document_names  # lazy: as in timed_steps
    from ingest.store.models import Document  # lazy: as above

    with state.components.engine.connect() as connection:
        ids = [row[0] for row in connection.execute(select(Document.id).order_by(col(Document.id)))]
    sets = [ids[(i * 7919) % len(ids) :][:10] for i in range(n)]  # ten neighbours from spread-out starts
    out: dict[str, float] = {}
    for label, pause in (("back to back", 0.0), ("after a 10 ms wait", 0.01)):
        spent = 0.0
        for ten in sets:
            if pause:
                time.sleep(pause)
            started = time.perf_counter()
            document_names(state.components, "default", ten)
            spent += time.perf_counter() - started
        out[label] = round(spent * 1000 / len(sets), 3)
    return out


@contextmanager
def timed_steps(state: AppState) -> Iterator[tuple[dict[str, float], Counter[str]]]:
    """Time the route's steps while inside (one thread): seconds and calls per step, each step's time less the
    timed steps inside it (a focused search's index searches count as index searches)."""
    import service.retrieval as retrieval  # lazy: patched only while timing
    import service.routes.query as route  # lazy: as above
    from service.compliance.context import RequestAudit  # lazy: as above

    spent: dict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()

    inner: list[float] = []  # per open timed call, the time of the timed calls inside it (exclusive times)

    def timer(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            inner.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                spent[label] += elapsed - inner.pop()
                calls[label] += 1
                if inner:
                    inner[-1] += elapsed

        return timed

    components = state.components
    targets: list[tuple[Any, str, str]] = [
        (state.access, "principal", "authenticate (API key lookup)"),
        (state.access, "decide", "policy"),
        (state.answerer, "access", "access filter"),
        (components.embedder, "embed_query", "embed the query (ONNX Runtime)"),
        (components.sparse, "embed_query", "BM25 query terms"),
        (components.index, "search", "index search (Qdrant Edge, sealed payloads opened)"),
        (retrieval, "focused", "document focus (names looked up, resolved)"),
        (route, "citation", "citations and their snippets"),
        (RequestAudit, "record", "audit record"),
    ]
    with ExitStack() as stack:
        for owner, attribute, label in targets:
            stack.enter_context(mock.patch.object(owner, attribute, timer(label, getattr(owner, attribute))))
        yield spent, calls


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    queries = real_queries(n=200)
    keys = Keys()
    keys.reader = create_reader_key(args.data, keys)
    copy = args.data.parent / f"{args.data.name}-route-costs"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(args.data, copy, ignore=shutil.ignore_patterns("generator"))
    try:
        settings = Settings(data_dir=copy)
        components = build_components(settings)
        state: AppState = search_state(components)
        access = principal_access(copy, components, keys)
        bare = bare_factory(components.embedder, components.sparse, components.index, access, queries, 10, "hybrid")
        product = product_factory(state, keys.query_key, queries, 10, "hybrid")
        with ServeProcess(args.data, keys, UNTHROTTLED) as srv:
            assert srv.pid is not None
            loops = {
                "bare": bare,
                "product": product,
                "http": http_factory(srv.url, srv.headers(), queries, 10, "hybrid"),
            }
            for factory in loops.values():  # first-call costs (term counts, key cache) out of the measurement
                request = factory(0)
                for i in range(len(queries)):
                    request(i)
            say(f"{args.rounds} rounds of {args.requests} searches per loop, one at a time")
            per_search = sequential(loops, psutil.Process(srv.pid), args.requests, args.rounds)
        with timed_steps(state) as (spent, counted):
            started = time.perf_counter()
            request = product(0)
            for i in range(args.requests * args.rounds):
                request(i)
            total = time.perf_counter() - started
        after_wait = lookup_after_wait(state, args.requests)
        state.close()
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    n = args.requests * args.rounds
    steps = {k: round(v * 1000 / n, 3) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
    calls = {k: round(v / n, 2) for k, v in counted.items()}
    steps["(the rest: request model, JSON, filters, spans)"] = round(total * 1000 / n - sum(steps.values()), 3)
    loops_table = format_table(
        ["loop", "wall ms/search", "bench CPU ms/search", "server CPU ms/search"],
        [[name, s["wall"], s["bench"], s["server"]] for name, s in per_search.items()],
    )
    steps_table = format_table(
        ["step of the product loop", "ms/search", "calls/search"], [[k, v, calls.get(k, "")] for k, v in steps.items()]
    )
    text = (
        f"{loops_table}\n\nproduct loop timed by step, {round(total * 1000 / n, 2)} ms per search:\n{steps_table}"
        f"\n\ndocument focus's lookup alone, ms: {after_wait}"
    )
    print(text)
    result = {
        "data": str(args.data),
        "requests": args.requests,
        "rounds": args.rounds,
        "per_search": per_search,
        "steps_ms": steps,
        "calls": calls,
        "lookup_ms": after_wait,
        "table": text,
    }
    say(f"wrote {write_json(args.name, result)}")
    return result


if __name__ == "__main__":
    main()

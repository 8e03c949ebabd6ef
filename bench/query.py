"""Retrieval-only latency and throughput over HTTP, next to the bare "embed + index search" loop.

For each size (10k and 100k chunks by default; ``--sizes 10k,100k,1m``): build a synthetic corpus
(bench/synthetic.py) straight through the index port plus its Document/Chunk rows, measure HNSW
recall@10 against exact search on real query embeddings, run the bare loop in this process with
1, 4 and 16 threads, then start `python -m service serve` on the same data and run
``POST /v1/search`` with 1, 4 and 16 clients (bearer key; a reader key with ACL groups when the
build has key management). At the largest size a second index with int8 scalar quantisation is
built for its memory, disk and recall.

    .venv/bin/python -m bench.query                     # 10k and 100k, ~12 minutes on 2 cores
    .venv/bin/python -m bench.query --sizes 10k,100k,1m # adds 1M (~9 GB disk, ~18 GB RAM, ~40 min)
    .venv/bin/python -m bench.query --sizes 100k,1m --clients 1,4 --no-quantized --name query-1m  # ~25 min
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from bench import synthetic
from bench.common import format_table, human, load_sources, parse_sizes, ratio, real_queries, say, write_json
from bench.indexstats import create_quantized, measure_footprint, recall_at_k, rescoring_params
from bench.loadgen import RequestFailed, RunResult, WorkerFactory, run_closed_loop
from bench.server import READER_GROUPS, UNTHROTTLED, Keys, ServeProcess, create_reader_key
from ingest.config import Settings
from ingest.embedding.port import DenseEmbedder, SparseEncoder
from ingest.index.port import AccessFilter, VectorIndex
from ingest.parsing.unstructured_parser import UnstructuredParser
from ingest.runtime import Components, build_components, make_embedder

TENANT = "default"
# issue 17's goals at 100k chunks: p95 at one client, and HTTP throughput over the bare loop's at 1, 4 and 16 clients
TARGET_P95_MS = 50.0
TARGET_RATIO = 0.9


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10k,100k", help="corpus sizes, e.g. 10k,100k,1m")
    p.add_argument("--clients", default="1,4,16", help="concurrent clients per run")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=1.5, help="unmeasured seconds before each run")
    p.add_argument("--pool", type=int, default=10_000, help="real embeddings to compute (beyond: noised pool vectors)")
    p.add_argument("--queries", type=int, default=200, help="real questions to cycle through")
    p.add_argument("--k", type=int, default=10, help="results per search")
    p.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "bm25"])
    p.add_argument("--rounds", type=int, default=2, help="alternations of bare and HTTP per client count")
    p.add_argument("--no-quantized", action="store_true", help="skip the scalar-quantised index")
    p.add_argument("--no-http", action="store_true", help="bare loop only (no server)")
    p.add_argument(
        "--product",
        action="store_true",
        help="also run the route's work in this process (auth, policy, search, focus, audit, snippets, JSON)",
    )
    p.add_argument(
        "--client",
        default="stdlib",
        choices=["stdlib", "httpx", "both"],
        help="the load generator's HTTP client (both: httpx's runs interleaved too, reported apart)",
    )
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/enclave-bench/query"))
    p.add_argument("--name", default="query", help="results file name (bench/results/<name>.json)")
    return p.parse_args(argv)


# -- the two loops ---------------------------------------------------------------------------------
def bare_factory(
    embedder: DenseEmbedder,
    sparse: SparseEncoder,
    index: VectorIndex,
    access: AccessFilter,
    queries: Sequence[str],
    k: int,
    mode: str,
) -> WorkerFactory:
    def make(_client: int) -> Any:
        def request(i: int) -> str:
            q = queries[i % len(queries)]
            # the index search POST /v1/search makes: no best-dense lookup, which only the answerer's gate reads
            dense, terms = embedder.embed_query(q), sparse.embed_query(q)
            index.search(dense, terms, access, k, mode, best_dense=False)  # type: ignore[arg-type]
            return "search"

        return request

    return make


def search_state(components: Components) -> Any:
    """The service's state over ``components`` for the search path: no ingest worker, and the local generator
    built but not started (a search never generates)."""
    from service.state import build_state, make_generator  # lazy: the service side is loaded only for --product

    settings = components.settings
    return build_state(settings, start_worker=False, components=components, generator=make_generator(settings))


def product_factory(state: Any, key: str, queries: Sequence[str], k: int, mode: str) -> WorkerFactory:
    """What ``POST /v1/search`` does beyond the bare loop, without HTTP: the bearer key authenticated, the policy
    asked, the route's own search (focus, audit record, snippets) and the response encoded to JSON, on the
    thread that asks (the server's thread pool runs the same :func:`service.routes.query.ranked_chunks`)."""
    from service.auth.actor import actor_of  # lazy: the service side is loaded only for --product
    from service.compliance.context import RequestAudit  # lazy: as above
    from service.routes.query import ranked_chunks  # lazy: as above
    from service.schemas import SearchRequest  # lazy: as above

    authorization = f"Bearer {key}"

    def make(_client: int) -> Any:
        def request(i: int) -> str:
            principal = state.access.principal(authorization)
            decision = state.access.decide(principal, "query", ("reader",))
            if not decision.allowed:
                raise RequestFailed("search", f"policy denied: {decision.reason}")
            req = SearchRequest(query=queries[i % len(queries)], k=k, mode=mode)  # type: ignore[arg-type]
            ranked_chunks(state, principal, req, RequestAudit(state, actor_of(principal))).model_dump_json()
            return "search"

        return request

    return make


def http_factory(
    url: str, headers: dict[str, str], queries: Sequence[str], k: int, mode: str, client: str = "stdlib"
) -> WorkerFactory:
    """``POST /v1/search`` from each client thread over one kept-alive connection.

    ``client``: ``stdlib`` (default), a bare HTTP/1.1 client (``http.client``) sending bodies encoded up front,
    or ``httpx``. The load generator shares the server's 2 cores, so what it spends per request is taken
    from the server: httpx spends several times what ``http.client`` does (both are measured side by side
    with ``--client both``), and a load generator's job is to cost as little as it can (as wrk's does).
    """
    if client == "httpx":
        return _httpx_factory(url, headers, queries, k, mode)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    bodies = [json.dumps({"query": q, "k": k, "mode": mode}).encode() for q in queries]
    sent = {**headers, "Content-Type": "application/json"}

    def make(_client: int) -> Any:
        conn = http.client.HTTPConnection(host, port, timeout=60)

        def request(i: int) -> str:
            body = bodies[i % len(bodies)]
            try:
                conn.request("POST", "/v1/search", body=body, headers=sent)
                resp = conn.getresponse()
            except (http.client.HTTPException, ConnectionError):
                conn.close()  # the server closed a kept-alive connection: the next request reconnects
                raise
            data = resp.read()
            if resp.status != 200:
                raise RequestFailed("search", f"HTTP {resp.status}: {data[:200]!r}")
            return "search"

        return request

    return make


def _httpx_factory(url: str, headers: dict[str, str], queries: Sequence[str], k: int, mode: str) -> WorkerFactory:
    def make(_client: int) -> Any:
        client = httpx.Client(base_url=url, headers=headers, timeout=60)

        def request(i: int) -> str:
            resp = client.post("/v1/search", json={"query": queries[i % len(queries)], "k": k, "mode": mode})
            if resp.status_code != 200:
                raise RequestFailed("search", f"HTTP {resp.status_code}: {resp.text[:200]}")
            return "search"

        return request

    return make


def merge(runs: Sequence[RunResult]) -> RunResult:
    """One result from several rounds of the same configuration."""
    out = RunResult(clients=runs[0].clients, seconds=sum(r.seconds for r in runs))
    for r in runs:
        for kind, lat in r.latencies_ms.items():
            out.latencies_ms.setdefault(kind, []).extend(lat)
        for kind, n in r.errors.items():
            out.errors[kind] = out.errors.get(kind, 0) + n
        out.error_samples.extend(r.error_samples)
    return out


def interleaved(
    factories: dict[str, WorkerFactory],
    clients: int,
    duration: float,
    warmup: float,
    rounds: int,
    cpu: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Alternate the configurations (A B A B …) so that noise from other processes hits both alike.

    ``cpu`` maps a configuration to the processes whose CPU time it is charged (psutil processes):
    CPU per request barely moves with the machine's load, unlike wall-clock throughput.
    """
    runs: dict[str, list[RunResult]] = {name: [] for name in factories}
    spent: dict[str, dict[str, float]] = {name: {} for name in factories}
    for _ in range(rounds):
        for name, factory in factories.items():
            before = _cpu_seconds((cpu or {}).get(name, {}))
            runs[name].append(run_closed_loop(factory, clients, duration / rounds, warmup))
            for who, seconds in _cpu_seconds((cpu or {}).get(name, {})).items():
                spent[name][who] = spent[name].get(who, 0.0) + seconds - before[who]
    out = {}
    for name, results in runs.items():
        summary = merge(results).summary()
        done = max(1, sum(r.succeeded_incl_warmup for r in results))
        summary["cpu_ms_per_request"] = {who: round(s * 1000 / done, 2) for who, s in spent[name].items()}
        summary["loadavg_after"] = round(os.getloadavg()[0], 2)
        say(
            f"    {name} clients={clients}: {summary['throughput_rps']} req/s, p50 {summary['latency_ms']['p50']} ms,"
            f" p95 {summary['latency_ms']['p95']} ms, CPU/req {summary['cpu_ms_per_request']},"
            f" errors {sum(summary['errors'].values())}"
        )
        out[name] = summary
    return out


def _cpu_seconds(processes: dict[str, Any]) -> dict[str, float]:
    times = {who: p.cpu_times() for who, p in processes.items()}
    return {who: t.user + t.system for who, t in times.items()}


def settle(url: str, headers: dict[str, str], queries: Sequence[str], seconds: float = 5.0) -> None:
    """Unmeasured sequential searches right after start-up (first-call costs, the generator's own warm-up)."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        i = 0
        while time.monotonic() < deadline:
            resp = client.post("/v1/search", json={"query": queries[i % len(queries)], "k": 10})
            if resp.status_code != 200:
                raise RuntimeError(f"/v1/search answered {resp.status_code}: {resp.text[:300]}")
            i += 1


# -- one size --------------------------------------------------------------------------------------
def principal_access(data_dir: Path, components: Components, keys: Keys) -> AccessFilter:
    """The index filter the server derives for the measured key (authenticator + policy), for the bare loop."""
    from service.auth.access import build_access

    settings = Settings(data_dir=data_dir, dev_api_key=keys.dev)  # type: ignore[arg-type]
    return build_access(settings, components.engine).principal(f"Bearer {keys.query_key}").access(None)


def build(
    settings: Settings, ctx: dict[str, Any], size: int, with_rows: bool = True
) -> tuple[Components, synthetic.LoadStats]:
    return synthetic.build_site(settings, ctx["embedder"], ctx["parser"], ctx["pool"], ctx["sources"], size, with_rows)


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def measure_size(args: argparse.Namespace, size: int, ctx: dict[str, Any]) -> dict[str, Any]:
    """Build one size, then measure bare and HTTP interleaved: the bare loop runs on a copy of the data
    directory (Qdrant Edge allows one process per index) while the server serves the original."""
    root = fresh_dir(args.work_dir / human(size))
    settings, bare_settings = Settings(data_dir=root / "data"), Settings(data_dir=root / "bare")
    say(f"[{human(size)}] building the index")
    components, stats = build(settings, ctx, size)
    components.close()
    keys = Keys()
    keys.reader = create_reader_key(settings.data_dir, keys)
    shutil.copytree(settings.data_dir, bare_settings.data_dir, ignore=shutil.ignore_patterns("generator"))
    out: dict[str, Any] = {
        "size": size,
        "load_seconds": stats.seconds,
        "principal": keys.principal,
        "footprint": measure_footprint(settings.index_dir, ctx["qvec_path"]),
    }
    bare = build_components(bare_settings, embedder=ctx["embedder"], parser=ctx["parser"])
    try:
        out["recall_at_10"] = recall_block(synthetic.raw_index(bare.index), ctx["qvecs"])
        say(f"[{human(size)}] recall@10 {out['recall_at_10']}")
        access = principal_access(bare_settings.data_dir, bare, keys)
        out["access_filter"] = repr(access)
        out.update(measure_loops(args, settings.data_dir, keys, bare, access, ctx))
    finally:
        bare.close()
        shutil.rmtree(bare_settings.data_dir, ignore_errors=True)
    return out


def recall_block(index: Any, qvecs: np.ndarray) -> dict[str, float]:
    return {
        "tenant": recall_at_k(index, qvecs, AccessFilter(tenant=TENANT)),
        "reader_acl": recall_at_k(
            index, qvecs, AccessFilter(tenant=TENANT, principal_user="bench-reader", principal_groups=READER_GROUPS)
        ),
    }


def measure_loops(
    args: argparse.Namespace,
    data_dir: Path,
    keys: Keys,
    components: Components,
    access: AccessFilter,
    ctx: dict[str, Any],
) -> dict[str, Any]:
    import psutil

    queries = ctx["queries"]
    bare = bare_factory(components.embedder, components.sparse, components.index, access, queries, args.k, args.mode)
    if args.no_http:
        cpu = {"bare": {"bench": psutil.Process()}}
        return {
            "bare": [interleaved({"bare": bare}, c, args.duration, args.warmup, 1, cpu)["bare"] for c in ctx["clients"]]
        }
    out: dict[str, Any] = {"bare": [], "http": [], "http_client": "httpx" if args.client == "httpx" else "stdlib"}
    with ServeProcess(data_dir, keys, UNTHROTTLED) as srv:
        settle(srv.url, srv.headers(), queries)
        say(f"  HTTP /v1/search as {keys.principal}, interleaved with the bare loop")
        factories = {
            "bare": bare,
            "http": http_factory(srv.url, srv.headers(), queries, args.k, args.mode, out["http_client"]),
        }
        me = psutil.Process()
        cpu = {"bare": {"bench": me}, "http": {"server": psutil.Process(srv.pid), "client": me}}
        if args.product:
            state = search_state(components)
            factories["product"] = product_factory(state, keys.query_key, queries, args.k, args.mode)
            cpu["product"] = {"bench": me}
            out["product"] = []
        if args.client == "both":
            factories["http_httpx"] = http_factory(srv.url, srv.headers(), queries, args.k, args.mode, "httpx")
            cpu["http_httpx"] = cpu["http"]
            out["http_httpx"] = []
        for c in ctx["clients"]:
            runs = interleaved(factories, c, args.duration, args.warmup, args.rounds, cpu)
            for name, summary in runs.items():
                out[name].append(summary)
        out["server_rss_mib"] = round(psutil.Process(srv.pid).memory_info().rss / 2**20, 1) if srv.pid else None
    return out


def measure_quantized(args: argparse.Namespace, size: int, ctx: dict[str, Any]) -> dict[str, Any]:
    """The same corpus in an index with int8 scalar quantisation: recall (plain and rescored) and footprint."""
    root = fresh_dir(args.work_dir / f"{human(size)}-sq")
    settings = Settings(data_dir=root / "data")
    create_quantized(settings.index_dir)
    say(f"[{human(size)} int8] building the scalar-quantised index")
    components, stats = build(settings, ctx, size, with_rows=False)
    raw, tenant = synthetic.raw_index(components.index), AccessFilter(tenant=TENANT)
    recall = {
        "tenant": recall_at_k(raw, ctx["qvecs"], tenant),
        "tenant_rescored": recall_at_k(raw, ctx["qvecs"], tenant, approx=rescoring_params()),
    }
    components.close()
    footprint = measure_footprint(settings.index_dir, ctx["qvec_path"], quantized=True)
    shutil.rmtree(root, ignore_errors=True)
    return {"size": size, "load_seconds": stats.seconds, "recall_at_10": recall, "footprint": footprint}


# -- report ----------------------------------------------------------------------------------------
def per_million(sizes: list[dict[str, Any]], quantized: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Marginal RSS and disk per million chunks: the slope between the smallest and largest size (so the
    engine's fixed cost does not inflate it); int8 adds its difference to float32 at the largest size."""
    small, large = sizes[0], sizes[-1]
    fs, fl = small["footprint"], large["footprint"]
    if large["size"] > small["size"]:
        span = large["size"] - small["size"]
        rss_per, disk_per = (
            (fl["rss_data_mib"] - fs["rss_data_mib"]) * 2**20 / span,
            (fl["disk_data_bytes"] - fs["disk_data_bytes"]) / span,
        )
        method = f"slope {human(small['size'])}→{human(large['size'])}"
    else:
        rss_per, disk_per = fl["rss_data_mib"] * 2**20 / large["size"], fl["disk_data_bytes"] / large["size"]
        method = f"average at {human(large['size'])} (includes fixed costs)"
    out = {
        "float32": {
            "rss_gib": round(rss_per * 1e6 / 2**30, 2),
            "disk_gib": round(disk_per * 1e6 / 2**30, 2),
            "method": method,
        }
    }
    if quantized and quantized["size"] == large["size"]:
        fq = quantized["footprint"]
        rss_q = rss_per + (fq["rss_data_mib"] - fl["rss_data_mib"]) * 2**20 / large["size"]
        disk_q = disk_per + (fq["disk_data_bytes"] - fl["disk_data_bytes"]) / large["size"]
        out["int8 SQ"] = {
            "rss_gib": round(rss_q * 1e6 / 2**30, 2),
            "disk_gib": round(disk_q * 1e6 / 2**30, 2),
            "method": method + " + (int8 − float32) at " + human(large["size"]),
        }
    return out


def by_clients(size: dict[str, Any], name: str) -> dict[int, dict[str, Any]]:
    """The runs of loop ``name`` ("bare", "http", "product", "http_httpx") at one size, by client count."""
    return {r["clients"]: r for r in size.get(name, [])}


def latency_rows(sizes: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for s in sizes:
        http = by_clients(s, "http")
        for bare in s["bare"]:
            h = http.get(bare["clients"], {})
            hl, hcpu, bcpu = (
                h.get("latency_ms", {}),
                h.get("cpu_ms_per_request", {}),
                bare.get("cpu_ms_per_request", {}),
            )
            rows.append(
                [
                    human(s["size"]),
                    bare["clients"],
                    hl.get("p50"),
                    hl.get("p95"),
                    hl.get("p99"),
                    h.get("throughput_rps"),
                    bare["latency_ms"]["p50"],
                    bare["latency_ms"]["p95"],
                    bare["throughput_rps"],
                    ratio(h.get("throughput_rps"), bare["throughput_rps"]),
                    hcpu.get("server"),
                    hcpu.get("client"),
                    bcpu.get("bench"),
                    ratio(bcpu.get("bench"), hcpu.get("server")),
                ]
            )
    return rows


def product_lines(sizes: list[dict[str, Any]]) -> list[str]:
    """Where HTTP/bare goes (``--product``): the route's own work in-process against the bare loop, then HTTP."""
    rows = []
    for s in sizes:
        http, bare = by_clients(s, "http"), by_clients(s, "bare")
        for p in s.get("product", []):
            c = p["clients"]
            b, h = bare.get(c, {}), http.get(c, {})
            rows.append(
                [
                    human(s["size"]),
                    c,
                    b.get("throughput_rps"),
                    p["throughput_rps"],
                    h.get("throughput_rps"),
                    ratio(p["throughput_rps"], b.get("throughput_rps")),
                    ratio(h.get("throughput_rps"), p["throughput_rps"]),
                    b.get("cpu_ms_per_request", {}).get("bench"),
                    p.get("cpu_ms_per_request", {}).get("bench"),
                    h.get("cpu_ms_per_request", {}).get("server"),
                ]
            )
    if not rows:
        return []
    header = ["chunks", "clients", "bare req/s", "product req/s", "HTTP req/s", "product/bare", "HTTP/product"]
    table = format_table([*header, "bare CPU ms/req", "product CPU ms/req", "server CPU ms/req"], rows)
    return ["", "The route's work in-process (auth, policy, search, focus, audit, snippets, JSON; no HTTP):", table]


def httpx_lines(sizes: list[dict[str, Any]]) -> list[str]:
    """The same searches from an httpx load generator (``--client both``), next to the main client's."""
    rows = []
    for s in sizes:
        main, bare = by_clients(s, "http"), by_clients(s, "bare")
        for h in s.get("http_httpx", []):
            c = h["clients"]
            m = main.get(c, {})
            cpu, mcpu = h.get("cpu_ms_per_request", {}), m.get("cpu_ms_per_request", {})
            rows.append(
                [
                    human(s["size"]),
                    c,
                    h["throughput_rps"],
                    ratio(h["throughput_rps"], bare.get(c, {}).get("throughput_rps")),
                    cpu.get("client"),
                    m.get("throughput_rps"),
                    ratio(m.get("throughput_rps"), bare.get(c, {}).get("throughput_rps")),
                    mcpu.get("client"),
                ]
            )
    if not rows:
        return []
    header = ["chunks", "clients", "httpx req/s", "httpx/bare", "httpx CPU ms/req"]
    table = format_table([*header, "stdlib req/s", "stdlib/bare", "stdlib CPU ms/req"], rows)
    return ["", "The same searches sent by httpx (interleaved in the same run):", table]


def index_rows(sizes: list[dict[str, Any]], quantized: dict[str, Any] | None) -> list[list[Any]]:
    rows = []
    for label, s in [("float32", s) for s in sizes] + ([("int8 SQ", quantized)] if quantized else []):
        fp, recall = s["footprint"], s["recall_at_10"]
        rows.append(
            [
                label,
                human(s["size"]),
                recall["tenant"],
                recall.get("reader_acl"),
                recall.get("tenant_rescored"),
                fp["rss_data_mib"],
                round(fp["disk_data_bytes"] / 2**20, 1),
                round(sum(s["load_seconds"].values()), 1),
            ]
        )
    return rows


def zip_clients(size: dict[str, Any], name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(run of ``name``, bare run) pairs of one size, by client count."""
    bare = by_clients(size, "bare")
    return [(r, bare[r["clients"]]) for r in size.get(name, []) if r["clients"] in bare]


def targets(sizes: list[dict[str, Any]], real: int) -> dict[str, Any]:
    by = {s["size"]: s for s in sizes}

    def p95(size: int, clients: int = 1) -> float | None:
        runs = [r for r in by.get(size, {}).get("http", []) if r["clients"] == clients]
        return runs[0]["latency_ms"]["p95"] if runs else None

    rows = latency_rows(sizes)
    ratios = [r[9] for r in rows if r[9] is not None]
    cpu_ratios = [r[13] for r in rows if r[13] is not None]
    pairs = [(p["throughput_rps"], b["throughput_rps"]) for s in sizes for p, b in zip_clients(s, "product")]
    product_ratios = [x for x in (ratio(p, b) for p, b in pairs) if x is not None]
    recalls = [s["recall_at_10"]["tenant"] for s in sizes if s["size"] <= real]  # every vector a real embedding
    out: dict[str, Any] = {
        "p95_100k_1client_ms": p95(100_000),
        "p95_100k_target_ms": TARGET_P95_MS,
        "min_http_over_bare_throughput": min(ratios) if ratios else None,
        "ratio_target": TARGET_RATIO,
        "min_bare_over_server_cpu_per_request": min(cpu_ratios) if cpu_ratios else None,
        "min_product_over_bare_throughput": min(product_ratios) if product_ratios else None,
        "recall_real_embeddings": recalls[0] if recalls else None,
        "recall_target": 0.95,
    }
    if p95(1_000_000) is not None and p95(100_000):
        out["p95_1m_over_100k"] = ratio(p95(1_000_000), p95(100_000))
    return out


def report(result: dict[str, Any]) -> str:
    lines = [
        f"POST /v1/search over HTTP vs the bare embed+search loop, {result['mode']} k={result['k']}, "
        f"principal: {result['sizes'][0]['principal']}",
        format_table(
            [
                "chunks",
                "clients",
                "HTTP p50 ms",
                "p95",
                "p99",
                "HTTP req/s",
                "bare p50 ms",
                "bare p95",
                "bare req/s",
                "HTTP/bare",
                "server CPU ms/req",
                "client",
                "bare CPU ms/req",
                "bare/server CPU",
            ],
            latency_rows(result["sizes"]),
        ),
        *product_lines(result["sizes"]),
        *httpx_lines(result["sizes"]),
        "",
        "Index footprint (RSS delta of opening and querying it in a fresh process; disk) and HNSW recall@10 vs exact",
        format_table(
            ["vectors", "chunks", "recall@10", "recall@10 ACL", "rescored", "RSS MiB", "disk MiB", "build s"],
            index_rows(result["sizes"], result.get("quantized")),
        ),
        "Per million chunks: "
        + "; ".join(
            f"{k}: RSS {v['rss_gib']} GiB, disk {v['disk_gib']} GiB ({v['method']})"
            for k, v in result["per_million"].items()
        ),
        "",
        "Targets: " + ", ".join(f"{k}={v}" for k, v in result["targets"].items()),
    ]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------
def prepare(args: argparse.Namespace, sizes: list[int]) -> dict[str, Any]:
    # the embedder the server builds (queries on its default query path), so the bare loop embeds alike
    embedder = make_embedder(Settings(data_dir=args.work_dir / "embedder"))
    embedder.warm_up()
    sources = load_sources()
    queries = real_queries(n=args.queries)
    qvecs = np.array([embedder.embed_query(q) for q in queries], dtype=np.float32)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    qvec_path = args.work_dir / "query-vectors.npy"
    np.save(qvec_path, qvecs)
    pool = synthetic.build_pool(embedder, sources, min(args.pool, max(sizes)), seed=1)
    parser = UnstructuredParser()
    parser.warm_up()
    return {
        "parser": parser,
        "embedder": embedder,
        "sources": sources,
        "queries": queries,
        "qvecs": qvecs,
        "qvec_path": qvec_path,
        "pool": pool,
        "clients": [int(c) for c in args.clients.split(",")],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    sizes = parse_sizes(args.sizes)
    started = time.perf_counter()
    ctx = prepare(args, sizes)
    pool: synthetic.Pool = ctx["pool"]
    result: dict[str, Any] = {
        "mode": args.mode,
        "k": args.k,
        "duration_s": args.duration,
        "clients": ctx["clients"],
        "pool": {
            "real_embeddings": len(pool.chunks),
            "cached": pool.cached,
            "embed_seconds": pool.embed_seconds,
            "noise_sigma": synthetic.NOISE_SIGMA,
        },
        "queries": len(ctx["queries"]),
        "sizes": [],
    }
    for size in sizes:
        result["sizes"].append(measure_size(args, size, ctx))
    if not args.no_quantized:
        result["quantized"] = measure_quantized(args, max(sizes), ctx)
    result["targets"] = targets(result["sizes"], len(pool.chunks))
    result["per_million"] = per_million(result["sizes"], result.get("quantized"))
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    text = report(result)
    print(text)
    path = write_json(args.name, {**result, "table": text})
    say(f"wrote {path} in {result['wall_seconds']} s")
    return result


if __name__ == "__main__":
    main()

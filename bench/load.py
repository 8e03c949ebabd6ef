"""A bounded load test: 16 clients for 60 s on loopback mixing search, query and ingest; then the audit check.

Clients have fixed roles (default 10 search, 4 query, 2 ingest) so that the slow generator cannot
absorb every client. Each search and query client is its own user with its own reader key (ACL filter
on; the default per-principal rate limit stays on); ingest uploads a fresh ~2 KB text document with
the dev key and waits until it is ready (its latency is upload → ready). Every request carries its
own ``X-Request-ID``; afterwards the audit table (when the build has one) must hold exactly one record per request sent.
The run stops by itself: no request starts after the deadline, ingest polling gives up 60 s after it.

    .venv/bin/python -m bench.load                     # 16 clients, 60 s, 10k-chunk corpus
    .venv/bin/python -m bench.load --duration 20 --roles search=2,query=1,ingest=1
"""

from __future__ import annotations

import argparse
import json
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench import synthetic
from bench.audit_check import audit_check
from bench.common import format_table, load_sources, real_queries, sample_chunks, say, write_json
from bench.loadgen import Request, RequestFailed, run_closed_loop
from bench.server import READER_GROUPS, Keys, ServeProcess, create_reader_key, create_reader_keys
from ingest.config import Settings
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    p.add_argument("--roles", default="search=10,query=4,ingest=2", help="clients per request kind")
    p.add_argument("--corpus", type=int, default=10_000, help="synthetic chunks loaded before the run")
    p.add_argument("--pool", type=int, default=10_000, help="real embeddings in the synthetic corpus")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/enclave-bench/load"))
    p.add_argument("--name", default="load", help="results file name (bench/results/<name>.json)")
    return p.parse_args(argv)


def parse_roles(text: str) -> list[str]:
    """``"search=10,query=4,ingest=2"`` → one role per client, interleaved (search, query, ingest, search, …)."""
    counts = {k: int(v) for k, v in (part.split("=") for part in text.split(",") if part)}
    unknown = set(counts) - {"search", "query", "ingest"}
    if unknown:
        raise SystemExit(f"unknown roles {sorted(unknown)}; use search, query and ingest")
    roles: list[str] = []
    while any(counts.values()):
        for kind in ("search", "query", "ingest"):
            if counts.get(kind, 0) > 0:
                roles.append(kind)
                counts[kind] -= 1
    return roles


class Ledger:
    """Every request sent: its request id, kind, method and path, and status (for the audit check)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, client: httpx.Client, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._lock:
            rid = f"bench-{kind}-{len(self.rows)}"
            row = {"request_id": rid, "kind": kind, "method": method, "path": path, "status": None}
            self.rows.append(row)
        resp = client.request(method, path, headers={"X-Request-ID": rid}, **kwargs)
        row["status"] = resp.status_code
        return resp


class Roles:
    """Request functions per role, sharing one ledger."""

    def __init__(
        self, srv: ServeProcess, queries: Sequence[str], sources: Any, deadline: float, user_keys: Sequence[str]
    ) -> None:
        self.srv, self.queries, self.sources, self.deadline = srv, queries, sources, deadline
        self.user_keys = user_keys
        self.ledger = Ledger()
        self.uploaded: list[str] = []

    def factory(self, roles: Sequence[str]) -> Any:
        def make(n: int) -> Request:
            role = roles[n % len(roles)]
            key = (
                self.srv.keys.dev
                if role == "ingest"
                else (self.user_keys[n] if self.user_keys else self.srv.keys.query_key)
            )
            client = httpx.Client(base_url=self.srv.url, headers=self.srv.headers(key), timeout=300)
            return {"search": self._search, "query": self._query, "ingest": self._ingest}[role](client, n)

        return make

    def _search(self, client: httpx.Client, _n: int) -> Request:
        def request(i: int) -> str:
            resp = self.ledger.send(
                client, "search", "POST", "/v1/search", json={"query": self.queries[i % len(self.queries)], "k": 10}
            )
            _expect(resp, 200, "search")
            return "search"

        return request

    def _query(self, client: httpx.Client, _n: int) -> Request:
        def request(i: int) -> str:
            resp = self.ledger.send(
                client, "query", "POST", "/v1/query", json={"query": self.queries[i % len(self.queries)]}
            )
            _expect(resp, 200, "query")
            return "query"

        return request

    def _ingest(self, client: httpx.Client, n: int) -> Request:
        def request(i: int) -> str:
            text = "\n\n".join(c.text for c in sample_chunks(self.sources, 3, seed=10_000_000 + i))
            resp = self.ledger.send(
                client,
                "ingest",
                "POST",
                "/v1/documents",
                files={"file": (f"load-{n}-{i}.txt", text.encode(), "text/plain")},
                data={"acl": json.dumps({"groups": list(READER_GROUPS), "users": []})},
            )
            _expect(resp, 202, "ingest")
            doc_id = resp.json()["document_id"]
            self.uploaded.append(doc_id)
            self._wait_ready(client, doc_id)
            return "ingest"

        return request

    def _wait_ready(self, client: httpx.Client, doc_id: str) -> None:
        while time.monotonic() < self.deadline + 60:
            resp = self.ledger.send(client, "ingest_poll", "GET", f"/v1/documents/{doc_id}")
            _expect(resp, 200, "ingest")
            status = resp.json()["status"]
            if status == "ready":
                return
            if status == "failed":
                raise RequestFailed("ingest", f"document failed: {resp.json().get('error_code')}")
            time.sleep(0.2)
        raise RequestFailed("ingest", "document not ready 60 s after the deadline")


def _expect(resp: httpx.Response, status: int, kind: str) -> None:
    if resp.status_code != status:
        raise RequestFailed(kind, f"HTTP {resp.status_code}: {resp.text[:200]}")


def build_corpus(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """The synthetic corpus (bench/synthetic.py) with its Document/Chunk rows, so search and query find something."""
    from ingest.parsing.unstructured_parser import UnstructuredParser

    embedder = SentenceTransformerEmbedder()
    embedder.warm_up()
    sources = load_sources()
    pool = synthetic.build_pool(embedder, sources, min(args.pool, args.corpus), seed=1)
    components, stats = synthetic.build_site(
        Settings(data_dir=data_dir), embedder, UnstructuredParser(), pool, sources, args.corpus
    )
    components.close()
    return {"chunks": args.corpus, "documents": stats.documents, "seconds": stats.seconds, "sources": sources}


def run(
    args: argparse.Namespace, data_dir: Path, keys: Keys, sources: Any, user_keys: Sequence[str]
) -> tuple[dict[str, Any], Ledger]:
    roles = parse_roles(args.roles)
    with ServeProcess(data_dir, keys) as srv:
        say(f"  {len(roles)} clients ({args.roles}) for {args.duration:.0f} s as {keys.principal}")
        roles_obj = Roles(srv, real_queries(n=200), sources, time.monotonic() + args.duration, user_keys)
        result = run_closed_loop(roles_obj.factory(roles), len(roles), args.duration, warmup=0.0)
        summary = result.summary()
    summary["requests_sent"] = len(roles_obj.ledger.rows)
    summary["documents_uploaded"] = len(roles_obj.uploaded)
    return summary, roles_obj.ledger


def report(result: dict[str, Any]) -> str:
    s = result["load"]
    rows = [
        [kind, p["n"], p["p50"], p["p95"], p["p99"], p["max"], s["errors"].get(kind, 0)]
        for kind, p in s["per_kind"].items()
    ]
    audit = result["audit"]
    lines = [
        f"{s['clients']} clients for {s['seconds']} s ({result['roles']}), {result['corpus']['chunks']}-chunk corpus, "
        f"principal: {result['principal']}",
        format_table(["kind", "completed", "p50 ms", "p95", "p99", "max", "errors"], rows),
        f"requests sent {s['requests_sent']} (incl. ingest status polls), errors {sum(s['errors'].values())}, "
        f"throughput {s['throughput_rps']} completed/s",
        f"audit: {audit['verdict']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.perf_counter()
    shutil.rmtree(args.work_dir, ignore_errors=True)
    data_dir = args.work_dir / "data"
    say(f"[load] building a {args.corpus}-chunk corpus")
    corpus = build_corpus(args, data_dir)
    sources = corpus.pop("sources")
    keys = Keys()
    keys.reader = create_reader_key(data_dir, keys)
    # one reader key per client: 16 users, each under the default per-principal rate limit (kept on here)
    user_keys = create_reader_keys(data_dir, len(parse_roles(args.roles))) if keys.reader else []
    summary, ledger = run(args, data_dir, keys, sources, user_keys)
    result: dict[str, Any] = {
        "roles": args.roles,
        "corpus": corpus,
        "principal": keys.principal,
        "load": summary,
        "audit": audit_check(Settings(data_dir=data_dir).resolved_database_url, ledger.rows),
    }
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    text = report(result)
    print(text)
    say(f"wrote {write_json(args.name, {**result, 'table': text})}")
    return result


if __name__ == "__main__":
    main()

"""The benchmark scripts' own logic on tiny inputs: statistics, parsing, the bounded load loop, the
synthetic corpus (sealed, ACL'd, searchable through the product's index stack), recall and the audit
check. No timings are asserted."""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from bench import synthetic
from bench.answer import sse_events
from bench.audit_check import compare
from bench.common import Source, format_table, human, parse_sizes, percentiles, sample_chunks
from bench.heldout import clustered_bootstrap, query_bootstrap, sampling_spread, split_halves
from bench.indexstats import recall_at_k
from bench.load import parse_roles
from bench.loadgen import RequestFailed, run_closed_loop
from bench.query import http_factory, per_million
from ingest.index.port import AccessFilter
from ingest.runtime import Components

SOURCES = [Source(f"doc{i}", f"Title {i}", tuple(f"w{i}_{j}" for j in range(300))) for i in range(5)]


def test_percentiles_are_nearest_rank_and_sizes_parse() -> None:
    stats = percentiles([float(x) for x in range(1, 101)])
    assert (stats["p50"], stats["p95"], stats["p99"], stats["max"]) == (50, 95, 99, 100)
    assert percentiles([])["n"] == 0
    assert parse_sizes("10k, 100k,1m,250") == [10_000, 100_000, 1_000_000, 250]
    assert [human(n) for n in (10_000, 1_000_000, 1234)] == ["10k", "1m", "1234"]
    table = format_table(["a", "bb"], [[1, None], [2.5, "x"]]).splitlines()
    assert len({len(line) for line in table}) == 1 and "–" in table[2]


def test_sampled_chunks_are_runs_of_real_words_and_reproducible() -> None:
    chunks = sample_chunks(SOURCES, 50, seed=3, words=(10, 20))
    assert chunks == sample_chunks(SOURCES, 50, seed=3, words=(10, 20))
    for c in chunks:
        words = c.text.split()
        src = next(s for s in SOURCES if s.key == c.source)
        start = src.words.index(words[0])
        assert 10 <= len(words) <= 20 and list(src.words[start : start + len(words)]) == words


def test_closed_loop_stops_by_itself_and_counts_errors() -> None:
    def factory(_client: int):  # type: ignore[no-untyped-def]
        def request(i: int) -> str:
            time.sleep(0.01)
            if i % 5 == 0:
                raise RequestFailed("search", "HTTP 500")
            return "search"

        return request

    started = time.monotonic()
    result = run_closed_loop(factory, clients=3, duration=0.5, warmup=0.2)
    assert time.monotonic() - started < 2.0
    assert result.errors["search"] > 0 and result.completed > 0
    assert result.summary()["per_kind"]["search"]["n"] == result.completed


class _SearchHandler(BaseHTTPRequestHandler):
    """POST /v1/search on loopback: records what it got; "fail" answers 503, "close" closes the connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn
    seen: ClassVar[list[tuple[str, str | None, dict[str, object], int]]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's handler name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, self.headers["Authorization"], body, self.client_address[1]))
        status = 503 if body["query"] == "fail" else 200
        payload = json.dumps({"results": []}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if body["query"] == "close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        pass


def test_the_load_generators_client_keeps_its_connection_and_counts_refusals() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SearchHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _SearchHandler.seen.clear()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        factory = http_factory(url, {"Authorization": "Bearer k1"}, ["a", "b", "fail", "close", "c"], 7, "dense")
        request = factory(0)
        assert [request(0), request(1)] == ["search", "search"]
        with pytest.raises(RequestFailed, match="HTTP 503"):
            request(2)
        assert [request(3), request(4), request(5)] == ["search"] * 3  # after "close": a new connection
    finally:
        server.shutdown()
        server.server_close()
    paths, keys, bodies, ports = zip(*_SearchHandler.seen, strict=True)
    assert set(paths) == {"/v1/search"} and set(keys) == {"Bearer k1"}
    assert [b["query"] for b in bodies] == ["a", "b", "fail", "close", "c", "a"]
    assert all(b["k"] == 7 and b["mode"] == "dense" for b in bodies)
    assert len(set(ports[:4])) == 1 and ports[4] != ports[3]  # kept alive until the server closed it


def test_held_out_spreads_resample_whole_contracts() -> None:
    # questions about one contract succeed or fail together: resampling contracts must show it
    together = {"a": [1.0] * 10, "b": [0.0] * 10}
    boot = clustered_bootstrap(together, rounds=4000)
    one_by_one = statistics.pstdev(query_bootstrap([v for vs in together.values() for v in vs], 4000, seed=1))
    assert boot["mean"] == 0.5 and boot["se"] == pytest.approx(0.354, abs=0.02) and boot["se"] > 2.5 * one_by_one
    assert (boot["low"], boot["high"]) == (0.0, 1.0)
    alike = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [0.5]}
    assert clustered_bootstrap(alike, rounds=200)["se"] == 0.0
    apart = split_halves({"a": [1.0], "b": [0.0]}, rounds=50)  # every split: +1 or -1
    assert apart["share_over_allowed"] == 1.0 and apart["sd"] == pytest.approx(1.0, abs=0.05)
    assert split_halves(alike, rounds=50) == {"sd": 0.0, "share_over_allowed": 0.0}
    spread = sampling_spread(0.02, dev_clusters=87, heldout_clusters=4 * 87)
    assert spread["se_heldout"] == pytest.approx(0.01)
    assert spread["sd"] == pytest.approx(math.hypot(0.02, 0.01))
    assert spread["chance_over_allowed"] == pytest.approx(0.0898, abs=0.001)  # P(Z > 0.03 / 0.02236)
    with pytest.raises(ValueError):
        split_halves({"a": [1.0]}, rounds=5)


def test_roles_interleave_and_unknown_roles_are_refused() -> None:
    assert parse_roles("search=3,query=1,ingest=1") == ["search", "query", "ingest", "search", "search"]
    with pytest.raises(SystemExit):
        parse_roles("search=1,delete=1")


def test_sse_events_parse_multiline_stream() -> None:
    lines = [
        "event: token",
        'data: {"text": "Hi"}',
        "",
        "event: answer",
        'data: {"found": true}',
        "",
        "event: done",
        "data: {}",
        "",
    ]
    assert list(sse_events(iter(lines))) == [("token", {"text": "Hi"}), ("answer", {"found": True}), ("done", {})]


def test_audit_check_names_missing_and_duplicated_requests() -> None:
    sent = [{"request_id": f"bench-search-{i}"} for i in range(3)]
    ok = compare([(f"bench-search-{i}", "search", "ok") for i in range(3)] + [(None, "ingest.done", "ok")], sent)
    assert ok["verdict"].startswith("OK") and ok["missing"] == 0
    bad = compare(
        [("bench-search-0", "search", "ok"), ("bench-search-0", "search", "ok"), ("bench-search-1", "search", "ok")],
        sent,
    )
    assert bad["verdict"].startswith("FAIL") and bad["missing"] == 1 and bad["duplicated"] == 1
    assert compare([(None, "search", "ok")], sent)["verdict"].startswith("UNMATCHED")


def test_per_million_uses_the_slope_between_sizes() -> None:
    small = {"size": 1000, "footprint": {"rss_data_mib": 110.0, "disk_data_bytes": 11 * 2**20}}
    large = {"size": 11_000, "footprint": {"rss_data_mib": 120.0, "disk_data_bytes": 21 * 2**20}}
    quant = {"size": 11_000, "footprint": {"rss_data_mib": 115.0, "disk_data_bytes": 21 * 2**20}}
    out = per_million([small, large], quant)
    assert out["float32"]["rss_gib"] == pytest.approx(1000 / 1024, abs=0.01)  # 10 MiB per 10k chunks: 1000 MiB per 1M
    assert out["int8 SQ"]["rss_gib"] < out["float32"]["rss_gib"]


def test_synthetic_corpus_is_sealed_acl_filtered_and_searchable(components: Components) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(100, components.embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pool = synthetic.Pool(sample_chunks(SOURCES, 100, seed=1), vectors)
    stats = synthetic.load(components, pool, SOURCES, 240)  # beyond the pool: fresh texts, noised vectors
    synthetic.optimize(components, stats)
    assert stats.documents == 12 and components.index.count(AccessFilter(tenant="default")) == 240
    raw = synthetic.raw_index(components.index)
    stored = raw.search(vectors[0].tolist(), components.sparse.embed_query("w0_1"), AccessFilter(tenant="default"), 1)
    assert stored.chunks[0].record.text.startswith("enc1:")  # the payload is sealed, as ingestion stores it
    reader = AccessFilter(tenant="default", principal_user="bench-reader", principal_groups=("g1",))
    found = components.index.search(vectors[5].tolist(), components.sparse.embed_query(pool.chunks[5].text), reader, 10)
    assert found.chunks and all(set(c.record.acl_groups) <= {"g1"} and not c.record.acl_users for c in found.chunks)
    assert any(c.record.text == pool.chunks[5].text for c in found.chunks)  # opened in clear, its own text first
    assert recall_at_k(raw, vectors[:20], AccessFilter(tenant="default")) == 1.0  # tiny: exact and HNSW agree


def test_synthetic_load_survives_the_keyring_cache_filling_up(
    components: Components, monkeypatch: pytest.MonkeyPatch
) -> None:
    # at 1M chunks (50k documents) the keyring's cache fills and is cleared mid-batch; keys not yet
    # committed must still be found when the batch's payloads are sealed
    monkeypatch.setattr("ingest.keys.keyring.CACHE_LIMIT", 5)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, components.embedder.dim)).astype(np.float32)
    pool = synthetic.Pool(sample_chunks(SOURCES, 40, seed=2), vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    stats = synthetic.load(components, pool, SOURCES, 240)
    assert stats.documents == 12 and components.index.count(AccessFilter(tenant="default")) == 240

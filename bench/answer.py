"""End to end: question → streamed, cited answer over HTTP, next to the bare generator on the same prompts.

Real CUAD contracts are uploaded through ``POST /v1/documents`` (ACL ``groups: [g1]``) to a real
``python -m service serve``; then each CUAD question about them is asked with
``POST /v1/query {"stream": true}`` (the reader key when the build has key management) and timed:
time to the first ``token`` event (TTFT) and to ``done``. Interleaved with each HTTP question, the
same question runs in this process on a copy of the data directory — retrieve, build the prompt,
stream from the generator directly — so the ratio HTTP/direct is Enclave's overhead on the answer.

    .venv/bin/python -m bench.answer                            # packaged llama.cpp + SmolLM2
    .venv/bin/python -m bench.answer --base-url http://gpu:8000 # any OpenAI-compatible/vLLM server
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import DATA, format_table, percentiles, ratio, say, write_json
from bench.server import READER_GROUPS, Keys, ServeProcess, create_reader_key


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contracts", type=int, default=8, help="CUAD contracts to upload")
    p.add_argument("--questions", type=int, default=16, help="questions to ask (about the uploaded contracts)")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible generator (sets ENCLAVE_GENERATOR__BASE_URL)")
    p.add_argument("--model", default=None, help="model name at --base-url (ENCLAVE_GENERATOR__MODEL)")
    p.add_argument("--api-key", default=None, help="bearer key for --base-url (ENCLAVE_GENERATOR__API_KEY)")
    p.add_argument("--no-direct", action="store_true", help="skip the in-process generator baseline")
    p.add_argument("--work-dir", type=Path, default=Path("/tmp/enclave-bench/answer"))
    p.add_argument("--name", default="answer", help="results file name (bench/results/<name>.json)")
    return p.parse_args(argv)


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    doc: str


def questions(n_docs: int, n_questions: int, data: Path = DATA) -> tuple[list[Path], list[Question]]:
    """The first ``n_docs`` contracts that have short-answer questions, and up to ``n_questions`` about them."""
    answered = {json.loads(line)["query_id"] for line in (data / "cuad" / "answers-dev.jsonl").open()}
    texts = {row["_id"]: row["text"] for row in map(json.loads, (data / "cuad" / "queries-dev.jsonl").open())}
    docs: list[str] = []
    picked: list[Question] = []
    for row in map(json.loads, (data / "cuad" / "qrels-spans-dev.jsonl").open()):
        if row["query_id"] not in answered:
            continue
        if row["doc"] not in docs:
            if len(docs) >= n_docs:
                continue
            docs.append(row["doc"])
        picked.append(Question(row["query_id"], texts[row["query_id"]], row["doc"]))
    return [data / "cuad" / "contracts" / d for d in docs], picked[:n_questions]


# -- timing one streamed answer --------------------------------------------------------------------
@dataclass
class Timing:
    ttft_ms: float | None = None
    total_ms: float = 0.0
    tokens: int = 0
    found: bool | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ttft_ms": self.ttft_ms,
            "total_ms": round(self.total_ms, 1),
            "tokens": self.tokens,
            "found": self.found,
            "error": self.error,
        }


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """``(event, data)`` pairs from a server-sent-events line stream."""
    event, data = "message", []
    for line in lines:
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip() and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []
    if data:
        yield event, json.loads("\n".join(data))


def time_http(client: httpx.Client, question: str) -> Timing:
    timing, started = Timing(), time.perf_counter()
    with client.stream("POST", "/v1/query", json={"query": question, "stream": True}) as resp:
        if resp.status_code != 200:
            resp.read()
            return Timing(
                error=f"HTTP {resp.status_code}: {resp.text[:200]}", total_ms=(time.perf_counter() - started) * 1000
            )
        for event, data in sse_events(resp.iter_lines()):
            _on_event(timing, event, data, started)
    timing.total_ms = (time.perf_counter() - started) * 1000
    return timing


def _on_event(timing: Timing, event: str, data: Any, started: float) -> None:
    if event == "token" and data.get("text"):
        timing.tokens += 1
        if timing.ttft_ms is None:
            timing.ttft_ms = round((time.perf_counter() - started) * 1000, 1)
    elif event == "answer":
        timing.found = bool(data.get("found"))
    elif event == "error":
        timing.error = str(data.get("error", {}).get("message", data))[:200]


# -- the in-process baseline -----------------------------------------------------------------------
class Direct:
    """Retrieve + prompt + generator.stream in this process, on a copy of the server's data directory."""

    def __init__(self, data_dir: Path, reader: bool) -> None:
        from ingest.config import Settings
        from ingest.index.port import AccessFilter
        from service.state import build_state

        self.settings = Settings(data_dir=data_dir)
        self.state = build_state(self.settings, start_worker=False)
        groups = READER_GROUPS if reader else None
        self.access = AccessFilter(
            tenant=self.settings.default_tenant,
            principal_user="bench-reader" if reader else None,
            principal_groups=groups,
        )

    def time(self, question: str) -> Timing:
        from service import answering
        from service.generation.port import GenerationParams
        from service.retrieval import retrieve

        cfg, timing, started = self.settings.generator, Timing(), time.perf_counter()
        retrieved = retrieve(self.state.components, question, self.access, self.settings.retrieval.k)
        timing.found = answering.has_evidence(retrieved, self.settings.retrieval.min_dense_score)
        if timing.found:
            params = GenerationParams(
                max_tokens=cfg.max_tokens,
                temperature=cfg.temperature,
                timeout_s=cfg.timeout_s,
                frequency_penalty=cfg.frequency_penalty,
                cache_salt="tenant:default",
            )
            for delta in self.state.generator.stream(answering.build_messages(question, retrieved.chunks), params):
                if delta:
                    timing.tokens += 1
                    timing.ttft_ms = timing.ttft_ms or round((time.perf_counter() - started) * 1000, 1)
        timing.total_ms = (time.perf_counter() - started) * 1000
        return timing

    def close(self) -> None:
        self.state.close()


# -- flow ------------------------------------------------------------------------------------------
def upload_all(srv: ServeProcess, files: Sequence[Path], timeout: float = 900) -> dict[str, Any]:
    """Upload with the dev (admin) key, ACL ``groups: [g1]``, and wait until every document is ready."""
    started = time.perf_counter()
    with httpx.Client(base_url=srv.url, headers=srv.headers(srv.keys.dev), timeout=120) as client:
        ids = []
        for path in files:
            resp = client.post(
                "/v1/documents",
                files={"file": (path.name, path.read_bytes(), "text/plain")},
                data={"acl": json.dumps({"groups": list(READER_GROUPS), "users": []})},
            )
            resp.raise_for_status()
            ids.append(resp.json()["document_id"])
        chunks = wait_ready(client, ids, started + timeout)
    return {"documents": len(ids), "chunks": chunks, "seconds": round(time.perf_counter() - started, 1)}


def wait_ready(client: httpx.Client, ids: Sequence[str], deadline: float) -> int:
    pending, chunks = set(ids), 0
    while pending:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{len(pending)} documents were not ready in time")
        for doc_id in sorted(pending):
            doc = client.get(f"/v1/documents/{doc_id}").json()
            if doc["status"] == "failed":
                raise RuntimeError(f"document {doc_id} failed: {doc.get('error')}")
            if doc["status"] == "ready":
                pending.discard(doc_id)
                chunks += int(doc["chunk_count"])
        time.sleep(0.5)
    return chunks


def generator_env(args: argparse.Namespace) -> dict[str, str]:
    env = {}
    if args.base_url:
        env["ENCLAVE_GENERATOR__BASE_URL"] = args.base_url
    if args.model:
        env["ENCLAVE_GENERATOR__MODEL"] = args.model
    if args.api_key:
        env["ENCLAVE_GENERATOR__API_KEY"] = args.api_key
    return env


WARM_UP = "What is this agreement about, and who are its parties?"


def ask_all(srv: ServeProcess, direct: Direct | None, qs: Sequence[Question]) -> list[dict[str, Any]]:
    """Each question over HTTP, then (interleaved) directly, after one unmeasured warm-up question that
    is not among them (so no measured prompt starts in a warm prefix cache)."""
    rows = []
    with httpx.Client(base_url=srv.url, headers=srv.headers(), timeout=300) as client:
        time_http(client, WARM_UP)
        if direct is not None:
            direct.time(WARM_UP)
        for q in qs:
            http = time_http(client, q.text)
            row = {"id": q.id, "http": http.as_dict(), "direct": direct.time(q.text).as_dict() if direct else None}
            say(
                f"    {q.id}: TTFT {http.ttft_ms} ms, total {http.total_ms:.0f} ms, {http.tokens} token events,"
                f" found {http.found}"
            )
            rows.append(row)
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("http", "direct"):
        timed = [r[side] for r in rows if r[side] is not None and not r[side]["error"]]
        answered = [t for t in timed if t["found"] and t["ttft_ms"] is not None]
        out[side] = {
            "questions": len(timed),
            "answered": len(answered),
            "errors": sum(1 for r in rows if r[side] is not None and r[side]["error"]),
            "ttft_ms": percentiles([t["ttft_ms"] for t in answered]),
            "total_ms": percentiles([t["total_ms"] for t in answered]),
            "not_found_total_ms": percentiles([t["total_ms"] for t in timed if not t["found"]]),
            "tokens_per_s": round(
                sum(t["tokens"] for t in answered) / max(1e-9, sum(t["total_ms"] for t in answered) / 1000), 1
            ),
        }
    if out["direct"]["questions"]:
        out["ratio_ttft_p50"] = ratio(out["http"]["ttft_ms"]["p50"], out["direct"]["ttft_ms"]["p50"])
        out["ratio_total_p50"] = ratio(out["http"]["total_ms"]["p50"], out["direct"]["total_ms"]["p50"])
    return out


def report(result: dict[str, Any]) -> str:
    s = result["summary"]
    rows = [
        [
            side,
            s[side]["answered"],
            s[side]["ttft_ms"]["p50"],
            s[side]["ttft_ms"]["p95"],
            s[side]["total_ms"]["p50"],
            s[side]["total_ms"]["p95"],
            s[side]["tokens_per_s"],
            s[side]["not_found_total_ms"]["p50"],
            s[side]["errors"],
        ]
        for side in ("http", "direct")
        if s[side]["questions"]
    ]
    head = (
        f"Streamed answers, generator {result['generator']}, {result['corpus']['documents']} contracts "
        f"({result['corpus']['chunks']} chunks), {len(result['questions'])} questions, principal: {result['principal']}"
    )
    table = format_table(
        [
            "path",
            "answered",
            "TTFT p50 ms",
            "TTFT p95",
            "total p50 ms",
            "total p95",
            "tokens/s",
            "not-found p50 ms",
            "errors",
        ],
        rows,
    )
    tail = f"HTTP/direct: TTFT {s.get('ratio_ttft_p50')}, total {s.get('ratio_total_p50')}"
    return "\n".join([head, table, tail])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    import os

    args = parse_args(argv)
    os.environ.update(generator_env(args))  # the in-process baseline reads the same settings
    started = time.perf_counter()
    files, qs = questions(args.contracts, args.questions)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    data_dir = args.work_dir / "data"
    data_dir.mkdir(parents=True)
    keys = Keys()
    keys.reader = create_reader_key(data_dir, keys)
    result: dict[str, Any] = {
        "generator": args.base_url or "packaged llama.cpp + SmolLM2-135M",
        "principal": keys.principal,
    }
    with ServeProcess(data_dir, keys, generator_env(args)) as srv:
        say(f"  uploading {len(files)} contracts")
        result["corpus"] = upload_all(srv, files)
    # the baseline's copy is taken while no server runs, so index and database are consistent
    shutil.copytree(data_dir, args.work_dir / "direct", ignore=shutil.ignore_patterns("generator"))
    direct = None if args.no_direct else Direct(args.work_dir / "direct", reader=keys.reader is not None)
    try:
        with ServeProcess(data_dir, keys, generator_env(args)) as srv:
            result["questions"] = ask_all(srv, direct, qs)
    finally:
        if direct is not None:
            direct.close()
    result["summary"] = summarise(result["questions"])
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    text = report(result)
    print(text)
    say(f"wrote {write_json(args.name, {**result, 'table': text})}")
    return result


if __name__ == "__main__":
    main()

"""End to end over real processes: `enclave serve` (with its supervised llama.cpp server) on a free
port, documents uploaded over HTTP, a CUAD question answered with a citation into the right clause,
SSE streaming, a restart that keeps everything, deletion and bad input."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import CUAD, DEV_HEADERS, DEV_KEY, DOCS

pytestmark = pytest.mark.slow

QUERY_ID = "365d57c4-governing-law"
DISTRACTORS = 6
AUTH = DEV_HEADERS  # auth is on: every call carries the dev admin key set in the server's environment


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`enclave serve` as a child process, started and stopped like an operator would."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        env = {**os.environ, "ENCLAVE_DATA_DIR": str(self.data_dir), "ENCLAVE_DEV_API_KEY": DEV_KEY}
        log = (self.data_dir.parent / "serve.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(self.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.data_dir.parent / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError("enclave serve did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("e2e") / "data")
    srv.start()
    yield srv
    srv.stop()


def _qrel() -> tuple[str, str, list[dict[str, int]]]:
    query = next(
        json.loads(line) for line in (CUAD / "queries-dev.jsonl").open() if json.loads(line)["_id"] == QUERY_ID
    )
    qrel = next(
        json.loads(line) for line in (CUAD / "qrels-spans-dev.jsonl").open() if json.loads(line)["query_id"] == QUERY_ID
    )
    return query["text"], qrel["doc"], qrel["spans"]


def _upload(url: str, path: Path) -> str:
    response = httpx.post(
        f"{url}/v1/documents", files={"file": (path.name, path.read_bytes())}, headers=AUTH, timeout=60
    )
    assert response.status_code == 202, response.text
    return str(response.json()["document_id"])


def _wait_all(url: str, ids: list[str], timeout: float = 600) -> dict[str, dict]:  # type: ignore[type-arg]
    deadline, done = time.monotonic() + timeout, {}
    while time.monotonic() < deadline and len(done) < len(ids):
        for doc_id in ids:
            body = httpx.get(f"{url}/v1/documents/{doc_id}", headers=AUTH, timeout=30).json()
            if body["status"] in ("ready", "failed"):
                done[doc_id] = body
        time.sleep(0.5)
    assert len(done) == len(ids), "ingestion did not finish"
    return done


def test_cited_answer_streaming_restart_and_delete(server: Server) -> None:
    question, contract_name, spans = _qrel()
    contracts = [CUAD / "contracts" / contract_name] + [
        p for p in sorted((CUAD / "contracts").glob("*.txt"))[:DISTRACTORS] if p.name != contract_name
    ]
    files = contracts + [
        DOCS / "pdf" / "pdflatex-outline.pdf",
        DOCS / "html" / "apache.html",
        DOCS / "office" / "tbl-cell-access.docx",
    ]
    ids = [_upload(server.url, path) for path in files]
    states = _wait_all(server.url, ids)
    assert all(body["status"] == "ready" for body in states.values()), [b["error"] for b in states.values()]
    assert states[ids[-3]]["pages"] == 4  # the 4-page PDF keeps its pages

    answer = httpx.post(f"{server.url}/v1/query", json={"query": question}, headers=AUTH, timeout=300).json()
    assert answer["found"] is True and answer["answer"]
    top = answer["citations"][0]
    assert top["document_id"] == ids[0]
    assert any(top["start"] < s["end"] and s["start"] < top["end"] for s in spans), (top, spans)

    with httpx.stream(
        "POST", f"{server.url}/v1/query", json={"query": question, "stream": True}, headers=AUTH, timeout=300
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert events.count("token") >= 2 and events[-2:] == ["answer", "done"]

    server.stop()
    server.start()
    listed = {d["id"] for d in httpx.get(f"{server.url}/v1/documents", headers=AUTH, timeout=30).json()["documents"]}
    assert set(ids) <= listed
    again = httpx.post(f"{server.url}/v1/search", json={"query": question, "k": 5}, headers=AUTH, timeout=60).json()[
        "results"
    ]
    assert again[0]["document_id"] == ids[0]

    assert httpx.delete(f"{server.url}/v1/documents/{ids[0]}", headers=AUTH, timeout=60).status_code == 200
    after = httpx.post(f"{server.url}/v1/search", json={"query": question, "k": 50}, headers=AUTH, timeout=60).json()[
        "results"
    ]
    assert ids[0] not in {r["document_id"] for r in after}


def test_bad_input_over_http_leaves_nothing_indexed(server: Server) -> None:
    before = httpx.post(
        f"{server.url}/v1/search", json={"query": "crazy ones misfits rebels", "k": 50}, headers=AUTH, timeout=60
    ).json()["results"]
    ids = [
        _upload(server.url, DOCS / "bad" / name)
        for name in ("invalid.pdf", "crazyones-encrypted-256.pdf", "blank.pdf", "truncated.docx")
    ]
    states = _wait_all(server.url, ids)
    assert [states[i]["error_code"] for i in ids] == [
        "corrupt_document",
        "encrypted_document",
        "empty_document",
        "corrupt_document",
    ]
    assert all(states[i]["chunk_count"] == 0 for i in ids)
    after = httpx.post(
        f"{server.url}/v1/search", json={"query": "crazy ones misfits rebels", "k": 50}, headers=AUTH, timeout=60
    ).json()["results"]
    assert {r["document_id"] for r in after} == {r["document_id"] for r in before}
    anonymous = httpx.post(f"{server.url}/v1/search", json={"query": "crazy ones", "k": 5}, timeout=30)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"
    unsupported = httpx.post(f"{server.url}/v1/documents", files={"file": ("x.bin", b"")}, headers=AUTH, timeout=30)
    assert unsupported.status_code == 422 and unsupported.json()["error"]["code"] == "empty_document"

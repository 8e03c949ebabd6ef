"""The generator port against a real llama.cpp server running the packaged SmolLM2, plus tiny fake
servers on 127.0.0.1 for the failures a real server cannot be made to produce on demand (a stream
cut off mid-answer, a server that hangs).

One real server is started for this module (about a second); the restart test kills it, so it
runs last.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from service.generation.llama_cpp_generator import MODEL_NAME, SupervisedLlamaGenerator, packaged_model_path
from service.generation.llama_server import LlamaServerSupervisor, free_port, process_cmdline
from service.generation.openai_generator import OpenAICompatibleGenerator
from service.generation.port import (
    ChatMessage,
    GenerationParams,
    GeneratorError,
    GeneratorTimeout,
    GeneratorUnavailable,
)

GREEDY = GenerationParams(max_tokens=32, temperature=0.0)
QUESTION = [
    ChatMessage("system", "You are a concise assistant."),
    ChatMessage("user", "Name three fruits and say one thing about each."),
]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupervisedLlamaGenerator]:
    generator = SupervisedLlamaGenerator(tmp_path_factory.mktemp("llama"))
    generator.warm_up()
    yield generator
    generator.close()


def supervisor_of(generator: SupervisedLlamaGenerator) -> LlamaServerSupervisor:
    assert generator.supervisor is not None
    return generator.supervisor


def chat(base_url: str, messages: list[ChatMessage], **params: object) -> dict[str, object]:
    """A raw non-streamed request, to read what the port does not expose (usage, finish_reason)."""
    body = {"messages": [{"role": m.role, "content": m.content} for m in messages], **params}
    resp = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=60)
    resp.raise_for_status()
    result: dict[str, object] = resp.json()
    return result


# --- the real server ------------------------------------------------------------------------------


def test_complete_returns_an_answer(llama: SupervisedLlamaGenerator) -> None:
    answer = llama.complete(QUESTION, GREEDY)
    assert answer.strip()
    assert llama.model_name == MODEL_NAME


def test_stream_yields_deltas_that_add_up_to_the_whole_answer(llama: SupervisedLlamaGenerator) -> None:
    deltas = list(llama.stream(QUESTION, GREEDY))
    assert len(deltas) >= 3
    assert "".join(deltas) == llama.complete(QUESTION, GREEDY)  # greedy: same answer either way


def test_max_tokens_bounds_the_answer(llama: SupervisedLlamaGenerator) -> None:
    raw = chat(supervisor_of(llama).base_url, QUESTION, max_tokens=5, temperature=0)
    assert raw["usage"]["completion_tokens"] == 5  # type: ignore[index]
    assert raw["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    assert 1 <= len(list(llama.stream(QUESTION, GenerationParams(max_tokens=5, temperature=0)))) <= 6


def test_stop_sequence_ends_the_answer_before_it(llama: SupervisedLlamaGenerator) -> None:
    full = llama.complete(QUESTION, GREEDY)
    words = [w for w in full.split() if len(w) >= 4 and full.index(w) > 0]
    assert words, f"the model gave too short an answer to pick a stop word from: {len(full)} chars"
    stop = words[len(words) // 2]
    stopped = llama.complete(QUESTION, GenerationParams(max_tokens=32, temperature=0.0, stop=(stop,)))
    assert stopped == full[: full.index(stop)]
    assert "".join(llama.stream(QUESTION, GenerationParams(max_tokens=32, temperature=0.0, stop=(stop,)))) == stopped


def test_concurrent_streams_are_queued_not_cut_short(llama: SupervisedLlamaGenerator) -> None:
    # llama.cpp's server default (--interrupt_requests true) would end the first stream with [DONE]
    # as soon as the second request arrives: a silently truncated answer.
    prompts = [[ChatMessage("user", f"Tell a short story about a {animal}.")] for animal in ("fox", "whale")]
    params = GenerationParams(max_tokens=40, temperature=0.0)
    solo = [llama.complete(p, params) for p in prompts]
    results: dict[int, str] = {}

    def consume(index: int) -> None:
        results[index] = "".join(llama.stream(prompts[index], params))

    first = threading.Thread(target=consume, args=(0,))
    first.start()
    time.sleep(0.1)
    consume(1)
    first.join(timeout=60)
    assert results == {0: solo[0], 1: solo[1]}


def test_prompt_longer_than_the_context_is_refused_with_the_servers_reason(llama: SupervisedLlamaGenerator) -> None:
    too_long = [ChatMessage("user", "word " * 3000)]
    with pytest.raises(GeneratorError) as caught:
        llama.complete(too_long, GenerationParams(max_tokens=8))
    assert not isinstance(caught.value, GeneratorUnavailable)
    assert "maximum context length is 2048 tokens" in caught.value.message
    # Streamed, llama.cpp answers 200 and then ends the stream without [DONE]: never a short answer.
    with pytest.raises(GeneratorUnavailable, match="ended early"):
        list(llama.stream(too_long, GenerationParams(max_tokens=8)))
    # ... and closes that connection just after: the next request must not trip over it.
    assert llama.complete(QUESTION, GenerationParams(max_tokens=4)).strip()


def test_warm_up_discovers_the_served_model_and_rejects_a_wrong_one(llama: SupervisedLlamaGenerator) -> None:
    base_url = supervisor_of(llama).base_url
    discovered = OpenAICompatibleGenerator(base_url, None)
    discovered.warm_up()
    assert discovered.model_name == MODEL_NAME
    assert discovered.healthy()
    wrong = OpenAICompatibleGenerator(base_url, "gpt-4")
    with pytest.raises(GeneratorError, match="does not serve model 'gpt-4'"):
        wrong.warm_up()
    discovered.close()
    wrong.close()


def test_healthy_while_busy_generating(llama: SupervisedLlamaGenerator) -> None:
    # llama.cpp holds /v1/models until the running generation ends; health must not flap meanwhile.
    body = {"messages": [{"role": "user", "content": "Tell a long story."}], "stream": True}
    body |= {"max_tokens": 500, "min_tokens": 500}  # several seconds of work, whatever the model says
    first_line = threading.Event()

    def generate() -> None:
        url = f"{supervisor_of(llama).base_url}/v1/chat/completions"
        with httpx.stream("POST", url, json=body, timeout=60) as resp:
            for _ in resp.iter_lines():
                first_line.set()

    worker = threading.Thread(target=generate)
    worker.start()
    assert first_line.wait(timeout=30)
    assert llama.healthy()
    assert worker.is_alive(), "the generation ended before the health check: it proved nothing"
    worker.join(timeout=60)


def test_prompt_text_reaches_neither_our_logs_nor_the_server_log(
    llama: SupervisedLlamaGenerator, caplog: pytest.LogCaptureFixture
) -> None:
    canary = "zebracanary7731"
    messages = [ChatMessage("user", f"Repeat the word {canary} twice.")]
    with caplog.at_level(logging.DEBUG):
        llama.complete(messages, GenerationParams(max_tokens=16))
        list(llama.stream(messages, GenerationParams(max_tokens=16)))
    assert caplog.records
    assert canary not in caplog.text
    assert canary not in supervisor_of(llama).log_path.read_text()


def test_a_second_supervisor_on_the_same_state_dir_is_refused(llama: SupervisedLlamaGenerator) -> None:
    supervisor = supervisor_of(llama)
    rival = LlamaServerSupervisor(packaged_model_path(), supervisor.state_dir)
    with pytest.raises(GeneratorUnavailable, match="own state directory"):
        rival.start()
    assert supervisor.healthy()


def test_a_killed_server_is_restarted_on_the_same_url(llama: SupervisedLlamaGenerator) -> None:
    supervisor = supervisor_of(llama)
    old_pid, base_url = supervisor.pid, supervisor.base_url
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: not process_cmdline(old_pid), timeout_s=5)
    with pytest.raises(GeneratorUnavailable):
        llama.complete(QUESTION, GenerationParams(max_tokens=4))
    wait_for(lambda: supervisor.restarts == 1 and llama.healthy(), timeout_s=60)
    assert supervisor.pid != old_pid
    assert supervisor.base_url == base_url
    assert llama.complete(QUESTION, GenerationParams(max_tokens=8)).strip()


# --- the supervisor on its own ------------------------------------------------------------------


def test_stop_ends_the_server_and_removes_its_pid_file(tmp_path: Path) -> None:
    with LlamaServerSupervisor(packaged_model_path(), tmp_path, n_threads=1) as supervisor:
        pid = supervisor.pid
        assert pid is not None
        assert "--n_threads" in process_cmdline(pid)
        assert httpx.get(f"{supervisor.base_url}/v1/models", timeout=5).status_code == 200
    assert not process_cmdline(pid)
    assert not (tmp_path / "llama-server.pid").exists()
    assert "Uvicorn running" in (tmp_path / "llama-server.log").read_text()


def test_a_broken_model_fails_fast_with_the_server_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(packaged_model_path().read_bytes()[:100_000])
    started = time.monotonic()
    with pytest.raises(GeneratorUnavailable, match="Failed to load model") as caught:
        LlamaServerSupervisor(broken, tmp_path / "state").start()
    assert time.monotonic() - started < 30
    assert "exited with code" in caught.value.message


@pytest.mark.parametrize(
    ("argv", "is_stale_server"),
    [
        ([sys.executable, "-c", "import time; time.sleep(60)", "-m", "llama_cpp.server"], True),
        (["sleep", "60"], False),
    ],
    ids=["stale-llama-server", "unrelated-process"],
)
def test_start_kills_a_stale_server_and_nothing_else(tmp_path: Path, argv: list[str], is_stale_server: bool) -> None:
    other = subprocess.Popen(argv)
    # until exec, the child shows its parent's argv: wait for its own
    wait_for(lambda: process_cmdline(other.pid)[-1:] == argv[-1:], timeout_s=10)
    try:
        (tmp_path / "llama-server.pid").write_text(f"{other.pid}\n")
        with pytest.raises(GeneratorUnavailable, match="model file not found"):  # fails right after reaping
            LlamaServerSupervisor(tmp_path / "missing.gguf", tmp_path).start()
        assert not (tmp_path / "llama-server.pid").exists()
    finally:
        try:  # a killed process frees its argv a moment before its parent can reap it
            other.wait(timeout=5 if is_stale_server else 0.5)
            alive = False
        except subprocess.TimeoutExpired:
            alive = True
        other.kill()
        other.wait()
    assert alive is not is_stale_server


# --- failures seen through fake servers -----------------------------------------------------------


def test_nothing_listening_is_unavailable_quickly() -> None:
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    generator = OpenAICompatibleGenerator(url, "m")
    started = time.monotonic()
    with pytest.raises(GeneratorUnavailable, match="is the generator running at"):
        list(generator.stream(QUESTION, GREEDY))
    with pytest.raises(GeneratorUnavailable):
        generator.complete(QUESTION, GREEDY)
    assert time.monotonic() - started < 2
    assert not generator.healthy()


def sse_chunk(text: str) -> bytes:
    chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


def send_cut_stream(handler: BaseHTTPRequestHandler) -> None:
    """HTTP/1.0 framing: the body ends when the connection closes, so the cut looks 'clean'."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.end_headers()
    handler.wfile.write(b": ping\n\n" + sse_chunk("Hello") + sse_chunk(" world"))


def send_cut_chunked_stream(handler: BaseHTTPRequestHandler) -> None:
    """HTTP/1.1 chunked framing cut before its last chunk: the client sees a broken transfer."""
    handler.protocol_version = "HTTP/1.1"
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for event in (sse_chunk("Hello"), sse_chunk(" world")):
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
    handler.wfile.flush()
    handler.close_connection = True


def send_nothing_for_a_while(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(3)


def send_only_keep_alives(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.end_headers()
    for _ in range(30):
        handler.wfile.write(b": ping\n\n")
        handler.wfile.flush()
        time.sleep(0.1)


def send_error(handler: BaseHTTPRequestHandler) -> None:
    body = json.dumps({"error": {"message": "model is overloaded", "type": "server_error"}}).encode()
    handler.send_response(500)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@contextmanager
def fake_server(respond: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[str]:
    """Serve ``respond`` for every POST on 127.0.0.1; yield the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            respond(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("respond", [send_cut_stream, send_cut_chunked_stream], ids=["eof", "broken-chunking"])
def test_a_stream_cut_off_mid_answer_is_unavailable_not_a_short_answer(
    respond: Callable[[BaseHTTPRequestHandler], None],
) -> None:
    received: list[str] = []
    with fake_server(respond) as url:
        generator = OpenAICompatibleGenerator(url, "m")
        with pytest.raises(GeneratorUnavailable, match="generator stream ended early"):
            for delta in generator.stream(QUESTION, GREEDY):
                received.append(delta)
    assert received == ["Hello", " world"]


def test_a_server_that_does_not_answer_times_out() -> None:
    with fake_server(send_nothing_for_a_while) as url:
        generator = OpenAICompatibleGenerator(url, "m")
        started = time.monotonic()
        with pytest.raises(GeneratorTimeout):
            list(generator.stream(QUESTION, GenerationParams(timeout_s=0.5)))
        with pytest.raises(GeneratorTimeout):
            generator.complete(QUESTION, GenerationParams(timeout_s=0.5))
        assert time.monotonic() - started < 2.5


def test_keep_alives_alone_do_not_count_as_progress() -> None:
    with fake_server(send_only_keep_alives) as url:
        generator = OpenAICompatibleGenerator(url, "m")
        started = time.monotonic()
        with pytest.raises(GeneratorTimeout):
            list(generator.stream(QUESTION, GenerationParams(timeout_s=0.5)))
        assert time.monotonic() - started < 2


def test_a_server_error_carries_the_servers_message() -> None:
    with fake_server(send_error) as url:
        generator = OpenAICompatibleGenerator(url, "m")
        with pytest.raises(GeneratorError, match="HTTP 500.*model is overloaded"):
            list(generator.stream(QUESTION, GREEDY))
        with pytest.raises(GeneratorError, match="model is overloaded"):
            generator.complete(QUESTION, GREEDY)


def wait_for(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)

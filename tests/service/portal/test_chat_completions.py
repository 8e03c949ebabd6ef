"""The OpenAI-compatible facade, driven by the official ``openai`` client against a live server."""

from __future__ import annotations

import openai
import pytest
from sqlmodel import col, func, select

from ingest.store.compliance_models import AuditRecord
from ingest.store.db import session_scope
from service.chat.followup import Turn, clean_rewrite, standalone_question, usable
from service.generation.port import GenerationParams
from tests.service.portal.conftest import NDA, Portal

QUESTION = "How long does the agreement remain in force after the effective date?"


@pytest.fixture(scope="module")
def client(portal: Portal) -> openai.OpenAI:
    key = portal.headers.get("Authorization", "Bearer unused").removeprefix("Bearer ")
    return openai.OpenAI(base_url=f"{portal.url}/v1", api_key=key, max_retries=0, timeout=180)


def _answered(portal: Portal) -> int:
    with session_scope(portal.components.engine) as session:
        return int(
            session.exec(
                select(func.count()).select_from(AuditRecord).where(col(AuditRecord.action) == "query.answered")
            ).one()
        )


def test_models_list_the_caller_s_collections(client: openai.OpenAI, nda: str) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "enclave" and "enclave:contracts" in ids


def test_completion_cites_the_document_in_text_and_field_and_is_audited(
    client: openai.OpenAI, portal: Portal, nda: str
) -> None:
    before = _answered(portal)
    completion = client.chat.completions.create(
        model="enclave:contracts", messages=[{"role": "user", "content": QUESTION}]
    )
    content = completion.choices[0].message.content or ""
    citations = completion.model_extra["citations"]  # type: ignore[index]
    assert completion.object == "chat.completion" and completion.choices[0].finish_reason == "stop"
    assert completion.model_extra["found"] is True  # type: ignore[index]
    assert citations and {c["document_id"] for c in citations} == {nda}
    assert "\n\nSources:\n[" in content and content.rstrip().endswith(NDA.name)
    text = NDA.read_text(encoding="utf-8")
    assert text[citations[0]["start"] : citations[0]["end"]].startswith(citations[0]["snippet"].removesuffix(" …")[:40])
    assert _answered(portal) == before + 1


def test_stream_sends_chunks_then_citations_then_done(client: openai.OpenAI, nda: str) -> None:
    stream = client.chat.completions.create(
        model="enclave", stream=True, messages=[{"role": "user", "content": QUESTION}]
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop" and len(content) > 20
    assert final.model_extra["found"] is True and final.model_extra["citations"][0]["document_id"] == nda  # type: ignore[index]
    assert "Sources:\n[" in content


def test_follow_up_is_searched_with_its_subject(client: openai.OpenAI, nda: str) -> None:
    """The question searched carries the subject ("the NDA between Acme and Globex") the follow-up left out."""
    messages = [
        {"role": "user", "content": "Which state's law governs the mutual NDA between Acme and Globex?"},
        {"role": "assistant", "content": "Delaware law governs it [1].\n\nSources:\n[1] nda.txt"},
        {"role": "user", "content": "When can it be terminated early?"},
    ]
    completion = client.chat.completions.create(model="enclave:contracts", messages=messages)  # type: ignore[arg-type]
    searched = (completion.model_extra or {})["standalone_question"]
    carried = ("NDA", "Acme", "Globex", "mutual", "Delaware")  # the subject, from the earlier turns
    assert "terminat" in searched.lower() and any(word in searched for word in carried), searched


def test_unknown_model_and_bad_conversation_get_the_error_envelope(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.code == "model_not_found" and missing.value.param == "model"
    with pytest.raises(openai.UnprocessableEntityError) as no_question:
        client.chat.completions.create(model="enclave", messages=[{"role": "system", "content": "be brief"}])
    assert "user message" in no_question.value.message


class ScriptedRewrites:
    """Stands in for the model inside the rewrite step only (its output is what is under test)."""

    model_name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def complete(self, messages: object, params: object) -> str:
        return self.reply


TURNS = [
    Turn("user", "What is the notice period for terminating the Acme agreement?"),
    Turn("assistant", "30 days [1]."),
    Turn("user", "And who can terminate it?"),
]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Who can terminate the Acme agreement?", "Who can terminate the Acme agreement?"),
        ('Rewritten question: "Who can terminate the Acme agreement?"\nextra', "Who can terminate the Acme agreement?"),
        ("", "And who can terminate it? (follow-up to: What is the notice period for terminating the Acme agreement?)"),
        (
            "Either party may terminate it [1].",
            "And who can terminate it? (follow-up to: What is the notice period for terminating the Acme agreement?)",
        ),
        (
            "And who can terminate it?",
            "And who can terminate it? (follow-up to: What is the notice period for terminating the Acme agreement?)",
        ),
    ],
)
def test_rewrite_is_used_only_when_it_is_a_question_that_carries_the_subject(reply: str, expected: str) -> None:
    standalone = standalone_question(TURNS, ScriptedRewrites(reply), GenerationParams())  # type: ignore[arg-type]
    assert standalone.question == expected


def test_a_first_question_is_not_rewritten() -> None:
    assert standalone_question(TURNS[:1], ScriptedRewrites("x"), GenerationParams()).how == "as asked"  # type: ignore[arg-type]
    assert clean_rewrite("  \n Standalone question: Why?\n") == "Why?"
    assert not usable("The law is Delaware law.", "which law?", "NDA with Globex")

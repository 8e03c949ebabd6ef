"""The citation format as structured output, and the per-tenant prefix-cache salt (no server needed).

Against a real vLLM: tests/integration/test_vllm_contract.py.
"""

from __future__ import annotations

import json

import pytest

from service.generation.cache_salt import tenant_cache_salt
from service.generation.openai_generator import response_format
from service.generation.port import GenerationParams
from service.generation.structured import (
    CitedAnswer,
    MalformedStructuredAnswer,
    cited_answer_schema,
    parse_cited_answer,
)


class Keys:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def audit_key(self) -> bytes:
        return self.key


def test_the_schema_admits_only_the_numbers_of_the_sources_given() -> None:
    schema = cited_answer_schema(3)
    assert schema["properties"]["citations"]["items"]["enum"] == [1, 2, 3]
    assert schema["required"] == ["answer", "citations"] and schema["additionalProperties"] is False
    with pytest.raises(ValueError):
        cited_answer_schema(0)


def test_a_structured_answer_is_parsed_and_its_citations_cleaned() -> None:
    text = json.dumps({"answer": " Delaware law governs. ", "citations": [2, 2, 7, 1, 0]})
    assert parse_cited_answer(text, 3) == CitedAnswer("Delaware law governs.", (2, 1))


@pytest.mark.parametrize(
    "text",
    [
        "Delaware law governs [1].",
        "[1, 2]",
        '{"answer": "x"}',
        '{"answer": 3, "citations": []}',
        '{"answer": "x", "citations": ["1"]}',
        '{"answer": "x", "citations": [true]}',
    ],
)
def test_anything_else_is_refused_without_quoting_it(text: str) -> None:
    with pytest.raises(MalformedStructuredAnswer) as caught:
        parse_cited_answer(text, 3)
    assert "Delaware" not in caught.value.message


def test_citations_become_the_markers_the_answer_path_checks() -> None:
    assert CitedAnswer("Delaware law governs.", (2, 1)).marked_text() == "Delaware law governs. [2][1]"
    assert CitedAnswer("Delaware law governs [2].", (2,)).marked_text() == "Delaware law governs [2]."
    assert "Delaware" not in repr(CitedAnswer("Delaware law governs.", (1,)))


def test_the_schema_travels_as_an_openai_response_format() -> None:
    sent = response_format(cited_answer_schema(2))
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "cited_answer"
    assert sent["json_schema"]["schema"]["properties"]["citations"]["items"]["enum"] == [1, 2]
    assert response_format({"title": "my answer!", "type": "object"})["json_schema"]["name"] == "my_answer_"
    assert GenerationParams().json_schema is None


def test_the_cache_salt_is_per_tenant_stable_and_not_guessable() -> None:
    site, other_site = Keys(b"k" * 32), Keys(b"o" * 32)
    salt = tenant_cache_salt(site, "acme-law")
    assert salt == tenant_cache_salt(site, "acme-law")  # replicas sharing the keyring agree
    assert salt != tenant_cache_salt(site, "globex-health")
    assert salt != tenant_cache_salt(other_site, "acme-law")  # the tenant id alone does not give it away
    assert len(salt) == 64 and "acme" not in salt

"""The citation format as structured output: ``{"answer": str, "citations": [source numbers]}``.

With :func:`cited_answer_schema` in ``GenerationParams.json_schema``, a server with guided decoding
(vLLM) can only produce JSON of this shape, and only the numbers of sources it was given as
citations. :func:`parse_cited_answer` reads it back, strictly, so a server that ignored the schema
fails loudly instead of yielding a half-parsed answer. :meth:`CitedAnswer.marked_text` turns it into
the ``[n]``-marker prose the rest of the answer path (citation checks, redaction) already handles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service.generation.port import GeneratorError

SCHEMA_TITLE = "cited_answer"


class MalformedStructuredAnswer(GeneratorError):
    """The generator's answer does not follow the requested JSON schema."""

    code = "generator_malformed_answer"
    status = 502


@dataclass(frozen=True)
class CitedAnswer:
    """An answer and the 1-based numbers of the sources it cites (valid, deduplicated, in order)."""

    answer: str
    citations: tuple[int, ...]

    def marked_text(self) -> str:
        """The answer with its citations as trailing ``[n]`` markers (none already in the text twice)."""
        missing = [n for n in self.citations if f"[{n}]" not in self.answer]
        return (self.answer.rstrip() + " " + "".join(f"[{n}]" for n in missing)).strip()

    def __repr__(self) -> str:
        # Answer text must not leak into logs or tracebacks through repr().
        return f"CitedAnswer(answer=<{len(self.answer)} chars>, citations={self.citations})"


def cited_answer_schema(sources: int) -> dict[str, Any]:
    """JSON schema for an answer citing some of the sources numbered ``1..sources``.

    :raises ValueError: ``sources`` is below 1 (with no sources there is nothing to cite or answer).
    """
    if sources < 1:
        raise ValueError("a cited answer needs at least one source")
    source_number = {"type": "integer", "enum": list(range(1, sources + 1))}
    return {
        "title": SCHEMA_TITLE,
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "citations": {"type": "array", "items": source_number, "maxItems": sources},
        },
        "required": ["answer", "citations"],
        "additionalProperties": False,
    }


def parse_cited_answer(text: str, sources: int) -> CitedAnswer:
    """Read a structured answer; citations outside ``1..sources`` and repeats are dropped.

    :raises MalformedStructuredAnswer: not a JSON object with a string ``answer`` and an integer
        list ``citations`` (the message never quotes the answer).
    """
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedStructuredAnswer(
            "the generator's structured answer is not JSON: does the server support guided decoding "
            "(response_format json_schema)?"
        ) from exc
    answer = payload.get("answer") if isinstance(payload, dict) else None
    cited = payload.get("citations") if isinstance(payload, dict) else None
    if not isinstance(answer, str) or not isinstance(cited, list) or not all(_is_int(n) for n in cited):
        raise MalformedStructuredAnswer(
            'the generator\'s structured answer does not match {"answer": string, "citations": [integer]}'
        )
    valid = dict.fromkeys(n for n in cited if 1 <= n <= sources)
    return CitedAnswer(answer.strip(), tuple(valid))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

"""Answer-time redaction: the generated text is scanned under the strictest rule of its sources.

The model only ever sees redacted chunks, but it can still echo a name from the question or
invent one; scanning the answer closes that gap. Sources whose classification keeps everything
cost nothing here (no detector call).
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest.index.port import ScoredChunk
from ingest.redaction.policy import RedactionRule
from service.context import AppState
from service.schemas import QueryResponse


def answer_rule(state: AppState, sources: Sequence[ScoredChunk]) -> RedactionRule:
    """The rule the answer must obey: per entity, the strictest action among the sources' classifications."""
    if not state.settings.compliance.redaction_enabled or not sources:
        return RedactionRule("none")
    return state.components.compliance.redactor.policy.rule_for_all(c.record.classification for c in sources)


def redact_answer(
    state: AppState, tenant: str, response: QueryResponse, rule: RedactionRule
) -> tuple[QueryResponse, int]:
    """The response with its answer redacted, and how many values were replaced."""
    if not rule.needs_detection or not response.found:
        return response, 0
    text, summary = state.components.compliance.redactor.redact_text(response.answer, tenant, rule)
    return response.model_copy(update={"answer": text}), summary.total

"""Answer-time redaction: each shown answer sentence is scanned under the strictest rule of its sources.

The model only ever sees redacted chunks, but it can still echo a name from the question or
invent one; scanning what is shown closes that gap. Sources whose classification keeps everything
cost nothing here (no detector call).
"""

from __future__ import annotations

from collections.abc import Sequence

from ingest.config import Settings
from ingest.index.port import ScoredChunk
from ingest.redaction.policy import RedactionRule
from ingest.runtime import Components


def answer_rule(settings: Settings, components: Components, sources: Sequence[ScoredChunk]) -> RedactionRule:
    """The rule the answer must obey: per entity, the strictest action among the sources' classifications."""
    if not settings.compliance.redaction_enabled or not sources:
        return RedactionRule("none")
    return components.compliance.redactor.policy.rule_for_all(c.record.classification for c in sources)

"""Grounded answering: the read path from retrieved sources to an answer every sentence of which is
quoted from, or verified against, the source sentence it cites (see :mod:`service.answering.answerer`).

The prompt helpers of :mod:`service.answering.prompt` are re-exported for the benchmarks and tests
that build prompts directly.
"""

from service.answering.prompt import (
    INJECTION,
    MARKER,
    NOT_FOUND,
    REMOVED,
    SYSTEM_PROMPT,
    CitationCheck,
    build_messages,
    check_citations,
    citations_for,
    has_evidence,
    is_refusal,
    neutralise,
    strip_invalid_markers,
)

__all__ = [
    "INJECTION",
    "MARKER",
    "NOT_FOUND",
    "REMOVED",
    "SYSTEM_PROMPT",
    "CitationCheck",
    "build_messages",
    "check_citations",
    "citations_for",
    "has_evidence",
    "is_refusal",
    "neutralise",
    "strip_invalid_markers",
]

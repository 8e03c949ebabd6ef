"""Applying the redaction policy to parsed documents (at ingest) and to generated answers.

Redaction runs between parsing and chunking: the redacted text is what gets chunked, embedded,
indexed and cited, and every element stays an exact slice of it (offsets are recomputed, never
searched for). Only counts per entity type are reported, never the values found.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import islice, takewhile

from ingest.keys.keyring import KeyRing
from ingest.parsing.port import Element, ParsedDocument
from ingest.redaction.policy import RedactionPolicy, RedactionRule
from ingest.redaction.port import PiiDetector

PLACEHOLDER = re.compile(r"\[[A-Z_]+(?:-[0-9a-f]{8})?\]")


@dataclass(frozen=True)
class Replacement:
    start: int
    end: int
    text: str


@dataclass
class RedactionSummary:
    """What was redacted, by entity type and action; safe to log and audit (no values)."""

    classification: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, object]:
        return {"classification": self.classification, "redacted": dict(sorted(self.counts.items()))}


def pseudonym(key: bytes, entity: str, value: str) -> str:
    """Stable token for a value within a tenant: same person, same token, across documents."""
    normalised = " ".join(value.casefold().split())
    digest = hmac.new(key, f"{entity}\x00{normalised}".encode(), hashlib.sha256).hexdigest()
    return f"[{entity}-{digest[:8]}]"


class Redactor:
    """Policy + detector + the tenant's pseudonym key; shared by the worker and the read path."""

    def __init__(self, policy: RedactionPolicy, detector: PiiDetector, keyring: KeyRing) -> None:
        self.policy = policy
        self._detector = detector
        self._keyring = keyring

    def warm_up(self) -> None:
        """Load the detector only if some classification actually redacts (keep-only sites never pay)."""
        if any(rule.needs_detection for rule in self.policy.rules.values()):
            self._detector.warm_up()

    def redact_document(
        self, parsed: ParsedDocument, tenant: str, classification: str
    ) -> tuple[ParsedDocument, RedactionSummary]:
        rule = self.policy.rule_for(classification)
        summary = RedactionSummary(rule.classification)
        if not rule.needs_detection:
            return parsed, summary
        spans = split_at_boundaries(self._find(parsed.text, rule), parsed.elements)
        return apply_to_document(parsed, self._replacements(spans, rule, tenant, summary)), summary

    def redact_text(self, text: str, tenant: str, rule: RedactionRule) -> tuple[str, RedactionSummary]:
        """Redact free text (an answer) under ``rule``; placeholders already in it are left alone."""
        summary = RedactionSummary(rule.classification)
        if not rule.needs_detection or not text:
            return text, summary
        spans = [s for s in self._find(text, rule) if not _inside_placeholder(text, s)]
        return apply_to_text(text, self._replacements(spans, rule, tenant, summary)), summary

    def _find(self, text: str, rule: RedactionRule) -> list[Span]:
        active = rule.active
        floor = min(r.threshold for r in active.values())
        found = self._detector.detect(text, sorted(active), floor)
        return [
            Span(f.entity, f.start, f.end, text[f.start : f.end])
            for f in found
            if f.entity in active and f.score >= active[f.entity].threshold
        ]

    def _replacements(
        self, spans: list[Span], rule: RedactionRule, tenant: str, summary: RedactionSummary
    ) -> list[Replacement]:
        key = (
            self._keyring.pseudonym_key(tenant)
            if any(r.action == "pseudonymise" for r in rule.active.values())
            else b""
        )
        out: list[Replacement] = []
        for span in spans:
            action = rule.active[span.entity].action
            token = pseudonym(key, span.entity, span.value) if action == "pseudonymise" else f"[{span.entity}]"
            out.append(Replacement(span.start, span.end, token))
            summary.counts[f"{span.entity}:{action}"] += 1
        return out


@dataclass(frozen=True)
class Span:
    """A finding with the value it covers; the pieces of one entity split at element breaks share it."""

    entity: str
    start: int
    end: int
    value: str


def _cuts_inside(cuts: list[int], start: int, end: int) -> list[int]:
    return list(takewhile(lambda cut: cut < end, islice(cuts, bisect_right(cuts, start), None)))


def split_at_boundaries(spans: list[Span], elements: list[Element]) -> list[Span]:
    """Split spans that cross element boundaries, so each replacement lies inside one element."""
    cuts = sorted({e.start for e in elements} | {e.end for e in elements})
    pieces: list[Span] = []
    for span in spans:
        inner = _cuts_inside(cuts, span.start, span.end)
        bounds = [span.start, *inner, span.end]
        pieces.extend(replace(span, start=a, end=b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a)
    return pieces


def apply_to_text(text: str, replacements: list[Replacement]) -> str:
    parts: list[str] = []
    position = 0
    for r in sorted(replacements, key=lambda r: r.start):
        parts.append(text[position : r.start])
        parts.append(r.text)
        position = r.end
    parts.append(text[position:])
    return "".join(parts)


def apply_to_document(parsed: ParsedDocument, replacements: list[Replacement]) -> ParsedDocument:
    """New text with every element remapped onto it (``element.text == text[start:end]`` still holds)."""
    if not replacements:
        return parsed
    ordered = sorted(replacements, key=lambda r: r.start)
    ends = [r.end for r in ordered]
    shifts = [0]
    for r in ordered:
        shifts.append(shifts[-1] + len(r.text) - (r.end - r.start))

    def moved(position: int) -> int:
        return position + shifts[bisect_right(ends, position)]

    text = apply_to_text(parsed.text, ordered)
    elements = [
        replace(e, start=moved(e.start), end=moved(e.end), text=text[moved(e.start) : moved(e.end)])
        for e in parsed.elements
    ]
    return replace(parsed, text=text, elements=elements)


def _inside_placeholder(text: str, span: Span) -> bool:
    return any(m.start() <= span.start and span.end <= m.end() for m in PLACEHOLDER.finditer(text))

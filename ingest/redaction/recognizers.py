"""Enclave's own recognisers: medical record numbers, NPIs (with their check digit) and US case numbers.

Each is a Presidio ``EntityRecognizer`` whose regular expression has a ``value`` group: only that
group is reported, so ``MRN: 00123456`` redacts the number and keeps the label readable.
"""

from __future__ import annotations

import re
from typing import Any

import tldextract
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import EmailRecognizer

_OFFLINE_TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recogniser, validating domains against the bundled suffix list (no download)."""

    def validate_result(self, pattern_text: str) -> bool:
        return bool(_OFFLINE_TLD(pattern_text.rsplit("@", 1)[-1]).fqdn)


class ValueGroupRecognizer(EntityRecognizer):
    """Regex recogniser reporting the ``value`` group, with an optional validator."""

    ENTITY = ""
    PATTERNS: tuple[tuple[str, float], ...] = ()

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__, supported_language="en")
        self._compiled = [(re.compile(p, re.IGNORECASE), s) for p, s in self.PATTERNS]

    def load(self) -> None:
        """Nothing to load: the patterns are compiled in ``__init__``."""

    def valid(self, value: str) -> bool:
        return True

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        if self.ENTITY not in entities:
            return []
        found: dict[tuple[int, int], float] = {}
        for pattern, score in self._compiled:
            for match in pattern.finditer(text):
                span = match.span("value")
                if self.valid(match.group("value")):
                    found[span] = max(score, found.get(span, 0.0))
        return [RecognizerResult(self.ENTITY, s, e, score) for (s, e), score in found.items()]


class MedicalRecordNumberRecognizer(ValueGroupRecognizer):
    """``MRN 00123456``, ``Medical Record No.: A1234567``, ``MR#: 1234567`` (the label is required:
    bare digit runs are far more often amounts, dates or phone numbers)."""

    ENTITY = "MEDICAL_RECORD_NUMBER"
    PATTERNS = (
        (
            r"\b(?:MRN|MR\s?#|Med(?:ical)?\.?\s+Rec(?:ord)?\.?\s*(?:Number|No\.?|Num\.?|#)?)\s*[:#]?\s*(?P<value>[A-Z]{0,3}-?\d{5,12})\b",
            0.9,
        ),
        (r"\b(?:patient|chart)\s+(?:ID|number|no\.?|#)\s*[:#]?\s*(?P<value>[A-Z]{0,3}-?\d{6,12})\b", 0.6),
    )


def npi_check_digit_ok(number: str) -> bool:
    """The NPI check digit: Luhn over the prefix ``80840`` followed by the 10 digits (CMS standard)."""
    if not re.fullmatch(r"[12]\d{9}", number):
        return False
    digits = [int(d) for d in "80840" + number]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


class NpiRecognizer(ValueGroupRecognizer):
    """National Provider Identifier: 10 digits starting 1 or 2 whose check digit holds; "NPI" before it is required
    to reach any policy threshold."""

    ENTITY = "US_NPI"
    PATTERNS = (
        (r"\bNPI\b(?:\s*(?:number|no\.?|#))?\s*[:#]?\s*(?P<value>[12]\d{9})\b", 1.0),
        (r"(?<![\d-])(?P<value>[12]\d{9})(?![\d-])", 0.35),  # below every policy threshold unless context-led
    )

    def valid(self, value: str) -> bool:
        return npi_check_digit_ok(value)


class DocketNumberRecognizer(ValueGroupRecognizer):
    """US court case / docket numbers: ``1:21-cv-01234-ABC`` (federal form) or a number after
    "Case No.", "Docket No.", "Civil Action No.", "Index No."."""

    ENTITY = "US_DOCKET_NUMBER"
    PATTERNS = (
        (r"(?<![\w-])(?P<value>\d{1,2}:\d{2}-(?:cv|cr|mc|md|bk|ap|mj|po|sw)-\d{3,6}(?:-[A-Z]{2,4})*)\b", 0.95),
        (
            r"\b(?:case|docket|civil\s+action|index|cause|adversary\s+proceeding)\s+(?:no\.?|number|#)\s*[:#]?\s*"
            r"(?P<value>[A-Z0-9]{1,6}(?:[:\-/.][A-Z0-9]{1,8}){1,4})\b",
            0.9,
        ),
    )

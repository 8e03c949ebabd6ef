"""The PII detector port: find entities (with exact character spans) in text.

Adapters live beside this module (``presidio_detector.py``). Detection is policy-free: the
redaction policy decides which entity types matter, with what confidence, and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Finding:
    """One detected entity: ``text[start:end]`` is the value; ``score`` is the detector's confidence."""

    entity: str
    start: int
    end: int
    score: float


class PiiDetector(Protocol):
    """Contract: ``detect`` returns non-overlapping findings sorted by ``start``, only of ``entities``
    and only with ``score >= threshold``; it never logs the text or the values it finds."""

    def warm_up(self) -> None:
        """Load models once (the first call otherwise pays several seconds)."""

    def detect(self, text: str, entities: Sequence[str], threshold: float) -> list[Finding]:
        """Entities found in ``text``."""

"""Presidio adapter: spaCy ``en_core_web_sm`` NER plus pattern recognisers, all offline.

The analyzer is built once per process (about 4 s: the spaCy pipeline) and shared by every
detector instance. Long texts are analysed in windows cut at paragraph breaks, so no single call
exceeds spaCy's comfortable size; findings are mapped back to offsets of the whole text.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from ingest.redaction.port import Finding

WINDOW_CHARS = 20_000
_analyze_lock = threading.Lock()  # spaCy pipelines are not safe to share across threads mid-call


_build_lock = threading.Lock()


def _analyzer() -> Any:
    with _build_lock:  # concurrent first callers (worker, warm-up thread) build it once
        return _build_analyzer()


@lru_cache(maxsize=1)
def _build_analyzer() -> Any:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry  # lazy: presidio and spaCy take seconds
    from presidio_analyzer.nlp_engine import NlpEngineProvider  # lazy: presidio
    from presidio_analyzer.predefined_recognizers import (  # lazy: presidio
        CreditCardRecognizer,
        IbanRecognizer,
        IpRecognizer,
        MedicalLicenseRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UsBankRecognizer,
        UsItinRecognizer,
        UsSsnRecognizer,
    )

    from ingest.redaction.recognizers import (  # lazy: subclasses presidio recognizers (5 s import)
        DocketNumberRecognizer,
        MedicalRecordNumberRecognizer,
        NpiRecognizer,
        OfflineEmailRecognizer,
    )

    config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm"}]}
    nlp = NlpEngineProvider(nlp_configuration=config).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        SpacyRecognizer(),
        OfflineEmailRecognizer(),
        PhoneRecognizer(),
        CreditCardRecognizer(),
        UsSsnRecognizer(),
        UsItinRecognizer(),
        UsBankRecognizer(),
        IbanRecognizer(),
        IpRecognizer(),
        MedicalLicenseRecognizer(),
        MedicalRecordNumberRecognizer(),
        NpiRecognizer(),
        DocketNumberRecognizer(),
    ):
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])


def windows(text: str, size: int = WINDOW_CHARS) -> list[tuple[int, int]]:
    """Cut ``text`` into spans of at most ``size`` characters, preferring paragraph, then line, then space breaks."""
    spans: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > size:
        limit = start + size
        cut = max(text.rfind("\n\n", start, limit), text.rfind("\n", start, limit), text.rfind(" ", start, limit))
        cut = cut + 1 if cut > start else limit
        spans.append((start, cut))
        start = cut
    spans.append((start, len(text)))
    return spans


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """Keep the most confident (then the longest) of overlapping findings; return them sorted by start."""
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start)):
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


class PresidioDetector:
    """:class:`~ingest.redaction.port.PiiDetector` on Presidio's analyzer."""

    def warm_up(self) -> None:
        _analyzer()

    def detect(self, text: str, entities: Sequence[str], threshold: float) -> list[Finding]:
        if not entities or not text.strip():
            return []
        analyzer = _analyzer()
        found: list[Finding] = []
        for start, end in windows(text):
            with _analyze_lock:
                results = analyzer.analyze(
                    text[start:end], language="en", entities=list(entities), score_threshold=threshold
                )
            found.extend(Finding(r.entity_type, start + r.start, start + r.end, float(r.score)) for r in results)
        return resolve_overlaps(found)

"""PII detection quality and speed on the hand-labelled set in bench/data/pii_labelled.json.

For every entity type: precision (predicted spans that overlap a gold span of the same type),
recall (gold spans overlapped by a prediction of the same type) and F1, separately for the real
samples (CUAD contracts, SpamAssassin e-mails) and the synthetic clinical notes. Thresholds are the
ones the policies use: the ``phi`` classification's, and ``privileged``'s for docket numbers.

    .venv/bin/python bench/pii_redaction.py            # prints a table, writes bench/results/pii_redaction.json
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.config import Settings  # noqa: E402
from ingest.policy_data import load_policy_file  # noqa: E402
from ingest.redaction.policy import RedactionPolicy  # noqa: E402
from ingest.redaction.presidio_detector import PresidioDetector  # noqa: E402

DATA = Path(os.environ.get("ENCLAVE_SHARED_DATA", REPO.parent / "shared" / "data"))
LABELS = REPO / "bench" / "data" / "pii_labelled.json"
RESULTS = REPO / "bench" / "results" / "pii_redaction.json"
Span = tuple[str, int, int]


def sample_text(sample: dict[str, Any]) -> str:
    if "text" in sample:
        return str(sample["text"])
    raw = (DATA / sample["source"]).read_bytes().decode("utf-8", errors="replace")
    return raw[sample["start"] : sample["start"] + sample["length"]]


def gold_spans(text: str, labels: list[list[str]]) -> list[Span]:
    """Every whole-word occurrence of each labelled value; one inside a longer gold value of its type folds into it."""
    spans = [
        (kind, m.start(), m.end())
        for kind, value in labels
        for m in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text)
    ]
    missing = [value for kind, value in labels if not re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text)]
    if missing:
        raise SystemExit(f"labelled values not in their window: {missing}")
    return [s for s in spans if not any(o != s and o[0] == s[0] and o[1] <= s[1] and s[2] <= o[2] for o in spans)]


def thresholds() -> dict[str, float]:
    policy = RedactionPolicy.from_data(load_policy_file(Settings(), "redaction.json"))
    merged = policy.rule_for("phi").merged(policy.rule_for("privileged"))
    found = {name: rule.threshold for name, rule in merged.entities.items()}
    found["US_DOCKET_NUMBER"] = policy.rule_for("privileged").entities["US_DOCKET_NUMBER"].threshold
    return found


def overlaps(a: Span, b: Span) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def evaluate(
    detector: PresidioDetector, samples: list[dict[str, Any]], entities: list[str]
) -> tuple[dict[str, dict[str, int]], float, int]:
    limits = thresholds()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"gold": 0, "found": 0, "predicted": 0, "correct": 0})
    elapsed, chars = 0.0, 0
    for sample in samples:
        text = sample_text(sample)
        gold = gold_spans(text, sample["labels"])
        started = time.perf_counter()
        found = detector.detect(text, entities, min(limits.get(e, 0.5) for e in entities))
        elapsed += time.perf_counter() - started
        chars += len(text)
        predicted = [(f.entity, f.start, f.end) for f in found if f.score >= limits.get(f.entity, 0.5)]
        for kind in entities:
            c = counts[kind]
            c["gold"] += sum(g[0] == kind for g in gold)
            c["found"] += sum(g[0] == kind and any(overlaps(g, p) for p in predicted) for g in gold)
            c["predicted"] += sum(p[0] == kind for p in predicted)
            c["correct"] += sum(p[0] == kind and any(overlaps(p, g) for g in gold) for p in predicted)
    return counts, elapsed, chars


def scores(c: dict[str, int]) -> dict[str, float | None]:
    precision = c["correct"] / c["predicted"] if c["predicted"] else None
    recall = c["found"] / c["gold"] if c["gold"] else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else None
    return {"precision": precision, "recall": recall, "f1": f1}


def total(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    return {k: sum(c[k] for c in counts.values()) for k in ("gold", "found", "predicted", "correct")}


def fmt(value: float | None) -> str:
    return "  –  " if value is None else f"{value:.2f}"


def main() -> None:
    spec = json.loads(LABELS.read_text(encoding="utf-8"))
    entities: list[str] = spec["entities"]
    detector = PresidioDetector()
    started = time.perf_counter()
    detector.warm_up()
    warm_s = time.perf_counter() - started
    report: dict[str, Any] = {"warm_up_s": round(warm_s, 2), "thresholds": thresholds(), "sets": {}}
    print(f"{'set':<10} {'entity':<22} {'gold':>5} {'pred':>5} {'P':>5} {'R':>5} {'F1':>5}")
    for name, subset in (
        ("real", [s for s in spec["samples"] if not s.get("synthetic")]),
        ("synthetic", [s for s in spec["samples"] if s.get("synthetic")]),
    ):
        counts, elapsed, chars = evaluate(detector, subset, entities)
        rows = {
            kind: {**counts[kind], **scores(counts[kind])}
            for kind in entities
            if counts[kind]["gold"] or counts[kind]["predicted"]
        }
        rows["ALL"] = {**total(counts), **scores(total(counts))}
        for kind, row in rows.items():
            print(
                f"{name:<10} {kind:<22} {row['gold']:>5} {row['predicted']:>5} "
                f"{fmt(row['precision']):>5} {fmt(row['recall']):>5} {fmt(row['f1']):>5}"
            )
        report["sets"][name] = {
            "samples": len(subset),
            "chars": chars,
            "detect_ms_per_1k_chars": round(1000 * elapsed / chars * 1000, 2),
            "entities": rows,
        }
    print(
        f"warm-up {warm_s:.1f} s; detection {report['sets']['real']['detect_ms_per_1k_chars']} ms "
        "per 1,000 characters (real set)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

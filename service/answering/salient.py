"""The checkable content of a sentence: numbers, dates, durations, amounts, names, section references.

These are what an invented answer gets wrong ("Section 301(c)(4) of the Federal Trade Commission",
"sixty days" for thirty), so an answer sentence is shown only when each of them is found, normalised,
in the text it cites. Normalisation makes "thirty (30) days" = "30 days", "December 31, 2014" =
"12/31/14" = "2014-12-31", "$1,000,000" = "1000000", "Delaware" = "DELAWARE".
"""

from __future__ import annotations

import re
from datetime import date

MONTHS = {
    name: i
    for i, name in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        start=1,
    )
}
MONTHS.update({name[:3]: i for name, i in list(MONTHS.items())} | {"sept": 9})
UNITS = {"day": "day", "business day": "day", "week": "week", "month": "month", "year": "year", "hour": "hour"}
SMALL = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
NUMBER_WORD = re.compile(
    r"\b(?:(?P<tens>" + "|".join(TENS) + r")(?:[- ](?P<unit>one|two|three|four|five|six|seven|eight|nine))?"
    r"|(?P<small>" + "|".join(SMALL) + r")|(?P<hundred>(?:one|two|three) hundred(?: and)?(?: \w+)?))\b",
    re.IGNORECASE,
)
NUMERIC_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2,4})\b")
WORD_DATE = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")
DAY_FIRST = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?([A-Za-z]{3,9}),?\s+(\d{4})\b")
ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|(?<![\w.])\d+(?:\.\d+)?(?![\d])")
DURATION = re.compile(r"\b(\d+)\s*(?:\(\s*\d+\s*\)\s*)?(business day|day|week|month|year|hour)s?\b", re.IGNORECASE)
SECTION_REF = re.compile(r"\b\d{1,4}(?:\.\d{1,3})*(?:\([a-z0-9]{1,4}\))+", re.IGNORECASE)
WORD = re.compile(r"[A-Za-z][A-Za-z'’&-]*")
NEGATIONS = frozenset({"not", "no", "never", "neither", "nor", "without", "cannot", "won't", "don't", "doesn't"})
# Capitalised words that carry no claim (sentence openers, pronouns, the answer's own frame).
PLAIN = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "i",
        "we",
        "you",
        "he",
        "she",
        "they",
        "there",
        "here",
        "in",
        "on",
        "at",
        "by",
        "for",
        "of",
        "to",
        "and",
        "or",
        "but",
        "if",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "not",
        "no",
        "yes",
        "any",
        "all",
        "each",
        "either",
        "both",
        "such",
        "under",
        "per",
        "with",
        "from",
        "after",
        "before",
        "upon",
        "when",
        "where",
        "which",
        "who",
        "what",
        "how",
        "why",
        "according",
        "source",
        "sources",
        "answer",
        "agreement",
        "contract",
        "party",
        "parties",
        "section",
        "sections",
        "clause",
        "clauses",
        "article",
        "articles",
        "term",
        "terms",
    ]
)


def normalise_numbers(text: str) -> str:
    """``text`` with number words as digits and "thirty (30)" as "30" (so durations compare as numbers)."""
    text = NUMBER_WORD.sub(_number_word, text)
    return re.sub(r"\b(\d+)\s*\(\s*\1\s*\)", r"\1", text)


def _number_word(match: re.Match[str]) -> str:
    if match.group("small"):
        return str(SMALL.index(match.group("small").lower()))
    if match.group("tens"):
        units = SMALL.index(match.group("unit").lower()) if match.group("unit") else 0
        return str(TENS[match.group("tens").lower()] + units)
    return match.group(0)  # "one hundred twenty": left as words, compared as words


def dates(text: str) -> set[str]:
    """ISO dates written in ``text`` in any of the usual forms."""
    found: set[str] = set()
    for m in NUMERIC_DATE.finditer(text):
        _add_date(found, m.group(3), m.group(1), m.group(2))
    for m in WORD_DATE.finditer(text):
        _add_date(found, m.group(3), MONTHS.get(m.group(1).lower()), m.group(2))
    for m in DAY_FIRST.finditer(text):
        _add_date(found, m.group(3), MONTHS.get(m.group(2).lower()), m.group(1))
    for m in ISO_DATE.finditer(text):
        _add_date(found, m.group(1), m.group(2), m.group(3))
    return found


def _add_date(found: set[str], year: str, month: int | str | None, day: str) -> None:
    if month is None:
        return
    y = int(year) + (0 if len(year) == 4 else 2000 if int(year) < 50 else 1900)
    try:
        found.add(date(y, int(month), int(day)).isoformat())
    except ValueError:
        return


def numbers(text: str) -> set[str]:
    """Numbers as canonical strings ("1,000.50" → "1000.5", "thirty (30)" → "30")."""
    out: set[str] = set()
    for m in NUMBER.finditer(normalise_numbers(text)):
        value = float(m.group(0).replace(",", ""))
        out.add(str(int(value)) if value.is_integer() else str(value))
    return out


def durations(text: str) -> set[str]:
    """Durations as "<n> <unit>" ("thirty (30) days" → "30 day")."""
    return {f"{int(m.group(1))} {UNITS[m.group(2).lower()]}" for m in DURATION.finditer(normalise_numbers(text))}


def names(text: str) -> set[str]:
    """Lower-cased capitalised words (names, places, defined terms, acronyms) that are not sentence openers."""
    out: set[str] = set()
    for m in WORD.finditer(text):
        word = m.group(0).strip("'’-")
        if len(word) < 2 or not word[0].isupper() or word.lower() in PLAIN or word.lower() in MONTHS:
            continue
        if _opens_sentence(text, m.start()) and not word.isupper():
            continue  # "Notice must be …": capitalised only because it opens the sentence
        out.add(_plain(word))
    return out


def _opens_sentence(text: str, at: int) -> bool:
    before = text[:at].rstrip(" \"'“‘(")
    return not before or before[-1] in ".!?:;\n]"


def _plain(word: str) -> str:
    word = word.lower().replace("’", "'")
    return word[:-2] if word.endswith("'s") else word


def words(text: str) -> set[str]:
    """Every word of ``text``, lower-cased and without possessives: where names are looked up."""
    return {_plain(m.group(0).strip("'’-")) for m in WORD.finditer(text)}


def negations(text: str) -> set[str]:
    return {w for w in words(text) if w in NEGATIONS or w.endswith("n't")}


def section_refs(text: str) -> set[str]:
    return {m.group(0).lower() for m in SECTION_REF.finditer(text)}


def claims(text: str) -> dict[str, set[str]]:
    """Everything checkable in ``text``, by kind."""
    return {
        "date": dates(text),
        "number": numbers(text) - _date_parts(text),
        "duration": durations(text),
        "name": names(text),
        "section": section_refs(text),
        "negation": negations(text),
    }


def _date_parts(text: str) -> set[str]:
    """The numbers inside written dates (a date is checked as a date, not as three numbers)."""
    parts: set[str] = set()
    for pattern in (NUMERIC_DATE, WORD_DATE, DAY_FIRST, ISO_DATE):
        for m in pattern.finditer(text):
            parts |= numbers(" ".join(g for g in m.groups() if g and g[0].isdigit()))
    return parts


def unsupported(claimed: dict[str, set[str]], evidence: str) -> list[str]:
    """The claims of one answer sentence that ``evidence`` does not contain (empty: every claim found)."""
    found = claims(evidence)
    vocabulary = words(evidence)
    missing: list[str] = []
    for kind, values in claimed.items():
        have = vocabulary if kind in ("name", "negation") else found[kind]
        if kind == "number":
            have = found["number"] | {p for d in found["date"] for p in _iso_parts(d)}
        missing += [f"{kind}:{v}" for v in sorted(values - have)]
    return missing


def _iso_parts(iso: str) -> set[str]:
    y, m, d = iso.split("-")
    return {y, y[2:].lstrip("0") or "0", str(int(m)), str(int(d))}

"""Does an answer contain CUAD's normalised short answer? Strict (normalised substring) and lenient
(same date however written; same number and unit however spelled) — both are reported."""

from __future__ import annotations

import re
from datetime import date

MONTHS = {
    m: i
    for i, m in enumerate(
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
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        [
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
            "twenty",
        ]
    )
}
NUMBER_WORDS.update(
    {
        "thirty": 30,
        "forty": 40,
        "forty-five": 45,
        "fifty": 50,
        "sixty": 60,
        "ninety": 90,
        "one hundred twenty": 120,
        "one hundred eighty": 180,
    }
)
NUMERIC_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2,4})\b")
WORD_DATE = re.compile(r"\b([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")
DAY_FIRST = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?([a-z]{3,9}),?\s+(\d{4})\b")
DURATION = re.compile(r"\b(\d+|[a-z]+(?:-[a-z]+)?)\s*(?:\(\d+\)\s*)?(day|month|year|week)s?\b")


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9/ ]+", " ", text.lower()).split())


def strict_match(answer: str, gold: str) -> bool:
    return normalise(gold) in normalise(answer)


def _year(value: str) -> int:
    year = int(value)
    return year + (2000 if year < 50 else 1900) if year < 100 else year


def _date(year: str, month: int, day: str) -> date | None:
    try:
        return date(_year(year), month, int(day))
    except ValueError:
        return None


def dates_in(text: str) -> set[date]:
    lower = text.lower()
    found = {_date(y, int(m), d) if int(m) <= 12 else _date(y, int(d), m) for m, d, y in NUMERIC_DATE.findall(lower)}
    found |= {_date(y, MONTHS[m], d) for m, d, y in WORD_DATE.findall(lower) if m in MONTHS}
    found |= {_date(y, MONTHS[m], d) for d, m, y in DAY_FIRST.findall(lower) if m in MONTHS}
    return {d for d in found if d is not None}


def durations_in(text: str) -> set[tuple[int, str]]:
    out: set[tuple[int, str]] = set()
    for amount, unit in DURATION.findall(text.lower()):
        value = int(amount) if amount.isdigit() else NUMBER_WORDS.get(amount)
        if value is not None:
            out.add((value, unit))
    return out


def lenient_match(answer: str, gold: str) -> bool:
    """Strict, or the same calendar date, or the same amount of days/months/years."""
    if strict_match(answer, gold):
        return True
    gold_dates = dates_in(gold)
    if gold_dates:
        return bool(gold_dates & dates_in(answer))
    gold_durations = durations_in(gold) or ({(1, u)} if (u := _bare_unit(gold)) else set())
    return bool(gold_durations) and bool(gold_durations & durations_in(answer.replace("a year", "1 year")))


def _bare_unit(gold: str) -> str | None:
    match = re.search(r"\b(day|month|year|week)s?\b", gold.lower())
    return match.group(1) if match and not re.search(r"\d", gold) else None

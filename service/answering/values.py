"""The value a question asks for, copied verbatim from a sentence: a governing law, a date, a duration,
a notice period, a renewal term, an amount. Each finder returns the exact text as the sentence writes
it (so the answer's lead is a quotation too), or None when the sentence holds no value of that kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from service.answering.salient import DAY_FIRST, NUMERIC_DATE, WORD_DATE
from service.question import ValueKind

_NUM = (
    r"(?:\d+|(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ])?"
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|forty-five|fifty|sixty|seventy|eighty|ninety|hundred)(?:\s*\(\d+\))?)"
)
DURATION = re.compile(
    r"\b(?:(?:successive|additional|consecutive|further|renewal)\s+)?"
    + _NUM
    + r"\s+(?:\(\d+\)\s+)?(?:full\s+)?(?:calendar\s+|business\s+|working\s+)?(?:days?|weeks?|months?|years?)\b"
    + r"(?:\s+(?:from|after|following)\s+(?:the\s+)?(?:[A-Z][\w-]*\s*){1,3})?",
    re.I,
)
LAW = re.compile(
    r"\blaws?\s+(?:in\s+force\s+in\s+|of\s+)(?:the\s+)?(?:(?:State|Commonwealth|Province|Republic|Kingdom|"
    r"People'?s Republic|Government)\s+of\s+(?:the\s+)?)?"
    r"(?P<v>[A-Z][\w.]*(?:(?:\s+|,\s*|\s+and\s+|\s+of\s+)[A-Z][\w.]*){0,4})"
    r"|\b(?:by|under)\s+(?:the\s+)?(?:internal\s+)?(?P<w>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\s+law\b"
)
NOT_PLACES = {"United States"}  # "the laws of the United States and the State of X": the state is the answer
AMOUNT = re.compile(
    r"(?:US\$|USD\s?|\$|€|£|EUR\s?)\s?\d[\d,]*(?:\.\d+)?(?:\s*(?:million|billion|thousand))?"
    r"|\b\d+(?:\.\d+)?\s?(?:%|percent\b)"
)
LAW_CUE = re.compile(r"\b(?:govern\w*|constru\w+|interpret\w*|applicable law|choice of law)\b", re.I)
NOTICE_CUE = re.compile(r"\bnotice\b", re.I)
RENEWAL_CUE = re.compile(r"\b(?:renew\w*|extend\w*|extension|successive)\b", re.I)
PERPETUAL = re.compile(r"\b(?:perpetu\w+|in perpetuity|indefinite(?:ly)?|until terminated)\b", re.I)


def law(sentence: str) -> str | None:
    if not LAW_CUE.search(sentence):
        return None  # "the laws of the U.S." in an export clause names no governing law
    found = [m.group("v") or m.group("w") for m in LAW.finditer(sentence)]
    found = [v.rstrip(".,") for v in found if v]
    return next((v for v in found if v not in NOT_PLACES), found[0] if found else None)


def duration(sentence: str) -> str | None:
    m = DURATION.search(sentence)
    return m.group(0) if m else None


START_CUE = re.compile(
    r"\b(?:dated|as of|made|entered into|commenc\w*|effective|beginning|starting|from)\s*(?:on\s+)?$", re.I
)
END_CUE = re.compile(r"\b(?:until|through|expir\w*|end\w*|terminat\w*|before|up to)\s*(?:on\s+)?(?:the\s+)?$", re.I)


def date_value(sentence: str) -> str | None:
    """When something ends: a date after "until"/"expires on"; else the term ("three (3) years from the
    Effective Date"); else another date that is not a start date; else "perpetual"."""
    dates = [m for pattern in (WORD_DATE, NUMERIC_DATE, DAY_FIRST) for m in pattern.finditer(sentence)]
    ending = [d for d in dates if END_CUE.search(sentence[: d.start()][-40:])]
    if ending:
        return ending[0].group(0)
    term = duration(sentence)
    if term:
        return term
    other = [d for d in dates if not START_CUE.search(sentence[: d.start()][-40:])]
    if other:
        return other[0].group(0)
    perpetual = PERPETUAL.search(sentence)
    return perpetual.group(0) if perpetual else None


def amount(sentence: str) -> str | None:
    m = AMOUNT.search(sentence)
    return m.group(0).strip() if m else None


def nearest_duration(sentence: str, cue: re.Pattern[str]) -> str | None:
    """The duration written closest to a cue word ("ninety (90) days' prior written notice"), if there is a cue."""
    cues = [m.start() for m in cue.finditer(sentence)]
    found = list(DURATION.finditer(sentence))
    if not cues or not found:
        return None
    best = min(found, key=lambda m: min(abs(m.start() - c) for c in cues))
    return best.group(0)


def notice(sentence: str) -> str | None:
    return nearest_duration(sentence, NOTICE_CUE)


def renewal(sentence: str) -> str | None:
    """The term written after "renew"/"extend" ("renews for successive one (1) year terms"), else the nearest."""
    cue = RENEWAL_CUE.search(sentence)
    after = DURATION.search(sentence, cue.end()) if cue else None
    return after.group(0) if after else nearest_duration(sentence, RENEWAL_CUE)


FINDERS: dict[ValueKind, Callable[[str], str | None]] = {
    "law": law,
    "notice": notice,
    "renewal": renewal,
    "date": date_value,
    "duration": duration,
    "amount": amount,
}


def value_of(kind: ValueKind | None, sentence: str) -> str | None:
    """The value of ``kind`` written in ``sentence`` (verbatim), or None."""
    finder = FINDERS.get(kind) if kind else None
    return finder(sentence) if finder else None

"""Sentences and clauses of a source, with exact offsets: what a citation points at and an answer quotes.

Legal and medical text breaks the naive "split at a full stop" rule in both directions: "Inc.",
"Sec. 4", "e.g.", "mg." and "Dr." end no sentence, while a numbered clause list ("(a) …; (b) …"),
a heading line ("12. MISCELLANEOUS") or a blank line ends one without any full stop. Offsets are
into the text given, so ``text[s.start:s.end] == s.text`` always holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that end with a full stop without ending a sentence (compared lower-cased, without the stop).
ABBREVIATIONS = frozenset(
    [
        "inc",
        "ltd",
        "llc",
        "co",
        "corp",
        "corps",
        "no",
        "nos",
        "sec",
        "secs",
        "art",
        "arts",
        "para",
        "paras",
        "cl",
        "ch",
        "vol",
        "pp",
        "p",
        "fig",
        "figs",
        "ex",
        "exh",
        "dept",
        "div",
        "est",
        "e.g",
        "i.e",
        "etc",
        "vs",
        "v",
        "cf",
        "al",
        "approx",
        "ca",
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "messrs",
        "hon",
        "gen",
        "col",
        "lt",
        "sgt",
        "rev",
        "pt",
        "pts",
        "mg",
        "mcg",
        "ml",
        "mmol",
        "kg",
        "g",
        "cm",
        "mm",
        "km",
        "hr",
        "hrs",
        "min",
        "max",
        "tab",
        "tabs",
        "cap",
        "caps",
        "inj",
        "susp",
        "bid",
        "tid",
        "qid",
        "qd",
        "prn",
        "po",
        "iv",
        "im",
        "sc",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "u.s",
        "u.k",
        "n.a",
        "s.a",
        "b.v",
        "n.v",
        "a.g",
        "s.p.a",
        "l.p",
        "p.c",
    ]
)
# A full stop (or ! ?) and closing quotes/brackets, then whitespace: a candidate sentence end.
END = re.compile(r"[.!?][\"'”’)\]]*\s+")
# Clause lists: "; (b)", "; and (iii)", "; or 2." start a new clause.
CLAUSE = re.compile(r";\s+(?=(?:(?:and|or)\s+)?(?:\([a-z0-9]{1,4}\)|[a-z0-9]{1,3}[.)]\s))", re.IGNORECASE)
BLANK_LINE = re.compile(r"\n\s*\n")
# A line that starts a new unit even without a blank line before it: a numbered heading or clause, a bullet.
LINE_START = re.compile(
    r"\n(?=[ \t]*(?:(?:section|article|schedule|exhibit)\s+\w|\d{1,3}(?:\.\d{1,3})*[.)]?\s"
    r"|\([a-z0-9]{1,4}\)\s|[-•*]\s|[A-Z][A-Z &,-]{3,}\n))",
    re.IGNORECASE,
)
# A heading on a line of its own ("6. GOVERNING LAW", "ASSESSMENT AND PLAN:"): the text below it starts anew.
HEADING_LINE = re.compile(r"^[ \t]*(?:\d{1,3}(?:\.\d{1,3})*[.)]?[ \t]+)?[A-Z][A-Z0-9 &,;:'/()-]{2,}[ \t]*\n", re.M)
WORD_BEFORE = re.compile(r"([\w.&'-]+)$")
MAX_CHARS = 600  # longer runs are cut at their clauses so a quote stays readable


@dataclass(frozen=True)
class Sentence:
    """One sentence or clause: its text and ``[start, end)`` in the text it was split from."""

    text: str
    start: int
    end: int


def split(text: str) -> list[Sentence]:
    """The sentences and clauses of ``text`` in order, whitespace trimmed, none empty."""
    cuts = sorted({0, len(text), *_breaks(text)})
    out: list[Sentence] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        out.extend(_long_cut(text, *_trim(text, a, b)))
    return [s for s in out if s.text]


def _breaks(text: str) -> list[int]:
    found = [m.end() for m in BLANK_LINE.finditer(text)]
    found += [m.start() + 1 for m in LINE_START.finditer(text)]
    found += [m.end() for m in HEADING_LINE.finditer(text)]
    found += [m.end() for m in CLAUSE.finditer(text)]
    found += [m.end() for m in END.finditer(text) if _ends_sentence(text, m.start(), m.end())]
    return found


def _ends_sentence(text: str, stop: int, after: int) -> bool:
    """Whether the full stop at ``stop`` ends a sentence (not an abbreviation, initial or clause number)."""
    if text[stop] != "." or "\n" in text[stop:after]:
        return True  # "!", "?", or a full stop at the end of a line
    word = WORD_BEFORE.search(text, 0, stop)
    token = word.group(1).lower() if word else ""
    if token.rstrip(".") in ABBREVIATIONS or (len(token) == 1 and token.isalpha()):
        return False  # "Inc.", "e.g.", an initial "J."
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3})*", token):
        line_start = text.rfind("\n", 0, stop) + 1
        # "12. MISCELLANEOUS", "12.3 Governing Law" open a line: a clause number, not an end;
        # "… for 30 days. The" or "… Section 4.2. The": a number inside a line ends the sentence
        return not text[line_start:stop].strip(" \t(").replace(".", "").isdigit()
    following = text[after : after + 1]
    return not following or not following.islower()  # "… approx. three" continues lower-case


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _long_cut(text: str, a: int, b: int) -> list[Sentence]:
    """A run longer than :data:`MAX_CHARS` cut after its semicolons (then its commas) near the limit."""
    pieces: list[Sentence] = []
    while b - a > MAX_CHARS:
        window = text[a : a + MAX_CHARS]
        cut = max(window.rfind("; "), window.rfind(": "))
        if cut < MAX_CHARS // 3:
            cut = window.rfind(", ")
        if cut < MAX_CHARS // 3:
            break
        end = a + cut + 1
        pieces.append(Sentence(text[a:end], a, end))
        a, _ = _trim(text, end, b)
    pieces.append(Sentence(text[a:b], a, b))
    return pieces

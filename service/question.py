"""What a question asks, apart from the document it names.

"Which state's law governs the NDA between Acme Corp. and Globex?" names a document (the NDA between
Acme and Globex) and asks for one thing (the governing law). Retrieval needs both; choosing the
answering sentence inside the document needs only the second, because the names of the document
match its preamble far better than the clause that answers. The document reference is read from the
question's names (capitalised words, quoted or bracketed terms), and the kind of value asked for
from its wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ValueKind = Literal["law", "notice", "renewal", "date", "duration", "amount", "party"]

KINDS: list[tuple[ValueKind, re.Pattern[str]]] = [
    (
        "law",
        re.compile(
            r"\b(?:govern\w*|jurisdiction\w*|choice of law|which (?:state|country)\W*s? laws?|applicable law)\b", re.I
        ),
    ),
    ("notice", re.compile(r"\bnotice\b", re.I)),
    ("renewal", re.compile(r"\brenew\w*", re.I)),
    ("date", re.compile(r"\b(?:when|what date|which date|expir\w*|effective date|until when)\b", re.I)),
    ("duration", re.compile(r"\b(?:how long|how many (?:days|months|years|weeks)|period|duration)\b", re.I)),
    ("amount", re.compile(r"\b(?:how much|fees?|price|cost|amount|royalt\w+|cap|payment|paid|salary)\b|\$", re.I)),
    ("party", re.compile(r"\b(?:who|which part(?:y|ies)|what part(?:y|ies)|parties)\b", re.I)),
]
NAME = re.compile(r"(?:\b[a-z](?=[A-Z]))?[A-Z][\w&.'’-]*|\b[\w.-]*\d[\w.-]*\b|\b[\w-]+\.(?:com|net|org|io)\b")
QUOTED = re.compile(r"[\"“][^\"“”]{1,80}[\"”]|\([^()]{1,80}\)")

PARTIES = re.compile(r"\b(?:between|among|amongst)\s", re.I)


@dataclass(frozen=True)
class Question:
    """A question split into what it asks (``ask``) and the words that name its document (``reference``)."""

    text: str
    ask: str
    reference: str
    kind: ValueKind | None
    parties: str = ""  # the names after "between"/"among": a document the corpus must hold for an answer


def analyse(text: str) -> Question:
    """Split ``text`` into the ask and the document reference, and recognise the kind of value asked for."""
    reference_spans = [m.span() for m in QUOTED.finditer(text)]
    first_word = re.match(r"\W*\w+", text)
    skip_to = first_word.end() if first_word else 0
    reference_spans += [m.span() for m in NAME.finditer(text) if m.start() >= skip_to]
    keep = [True] * len(text)
    for a, b in reference_spans:
        keep[a:b] = [False] * (b - a)
    ask = " ".join("".join(c if k else " " for c, k in zip(text, keep, strict=True)).split())
    reference = " ".join(text[a:b] for a, b in sorted(reference_spans))
    if len(re.findall(r"[a-z]{3,}", ask)) < 2:
        ask = text  # the question is (almost) only names: everything it says is the ask
    kind = next((k for k, pattern in KINDS if pattern.search(ask)), None)
    connector = PARTIES.search(text)
    parties = " ".join(text[a:b] for a, b in sorted(reference_spans) if connector and a >= connector.end())
    return Question(text=text, ask=ask, reference=reference, kind=kind, parties=parties)


def without_names(text: str, names: str) -> str:
    """``text`` less each of ``names`` (``"; "``-separated, as :attr:`ingest.preamble.Preamble.names` gives them)
    it contains in any case and punctuation: "which state's laws apply under the co-branding agreement between
    theglobe.com inc. and ..." still names its document after :func:`analyse` keeps lower-case words in the ask.
    Single-word names (short names such as "Licensee") stay: one word may be what the question asks about."""
    for name in sorted(names.split("; "), key=len, reverse=True):
        words = re.findall(r"\w+", name)
        if len(words) >= 2:
            text = re.sub(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", " ", text, flags=re.I)
    return " ".join(text.split())

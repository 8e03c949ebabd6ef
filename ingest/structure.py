"""Headings and clauses of a parsed document: where each section starts and what it is called.

The chunker keeps a clause whole when it fits a chunk, and the embedder sees each chunk's heading
path ("12. MISCELLANEOUS > 12.3 Governing Law") so that a clause is found by the name of its
section even when its own words never say it. A wrong heading misleads every chunk below it, so
the reader is conservative: numbered headings must continue the document's numbering, unnumbered
ones must look like headings (short, capitalised, alone on their line) and stand before body
text, and lines that look like page furniture ("Page 3 of 10") are never headings.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ingest.parsing.port import ParsedDocument

MAX_LABEL_CHARS = 60
MAX_PATH_LEVELS = 3
MAX_PATH_CHARS = 120
SEPARATOR = " > "

_SEGMENT = re.compile(r"\S+(?:[ \t]{1,2}\S+)*")  # runs of 3+ spaces were line breaks in the source
_BARE_NUMBER = re.compile(
    r"\d{1,2}(?:\.\d{1,3}){0,3}\.?|\([a-z0-9]{1,4}\)|(?:ARTICLE|Article|SECTION|Section)[ \t]+[\dIVXLC.]{1,9}"
)
_NUMBERED = re.compile(r"(\d{1,2}(?:\.\d{1,3}){0,3})(\.?)(?=[ \t])[ \t]+")
_KEYWORD = re.compile(
    r"(ARTICLE|Article|SECTION|Section)[ \t]+([IVXLC]{1,7}|\d{1,2}(?:\.\d{1,3}){0,3})\.?(?:[ \t:–—-]+|$)"
)
_ROMAN = re.compile(r"([IVX]{1,5})\.[ \t]+")
_LETTERED = re.compile(r"\(([a-z]|[ivx]{1,4})\)[ \t]+")
_DEFINITION = re.compile(
    r"(?:\([a-z0-9]{1,4}\)[ \t]+)?[\"“]([^\"”\n]{1,50})[\"”][ \t]*(?:\([^)\n]{0,40}\)[ \t]*)?"
    r"(?:means|shall mean|has the meaning|shall have the meaning)\b"
)
_RUN_IN = re.compile(r"(.{2,60}?)(?:\.|:|[ \t][-–—])[ \t]+(?=(\S))")
_PAGE = re.compile(r"(?i)(?:page[ \t]*)?[-–]?[ \t]*\d+[ \t]*[-–]?(?:[ \t]*of[ \t]*\d+)?")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
_SMALL_WORDS = frozenset(
    ("a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to", "with")
    + ("without", "under", "upon", "its")
)
_FORM_FIELDS = frozenset(
    ("name", "title", "by", "date", "address", "attention", "attn", "phone", "telephone", "fax", "facsimile")
    + ("email", "e-mail", "signature", "its", "to", "from", "cc", "re", "subject", "print name", "witness")
)
_MEDICAL = frozenset(
    name.lower()
    for name in (
        ("Chief Complaint", "History", "History of Present Illness", "HPI", "Past Medical History", "PMH")
        + ("Past Surgical History", "Medications", "Current Medications", "Discharge Medications", "Allergies")
        + ("Social History", "Family History", "Review of Systems", "ROS", "Physical Exam", "Physical Examination")
        + ("Exam", "Vitals", "Vital Signs", "Labs", "Laboratory", "Laboratory Data", "Results", "Imaging", "Studies")
        + ("Assessment", "Plan", "Assessment and Plan", "Assessment/Plan", "A/P", "Impression", "Diagnosis")
        + ("Diagnoses", "Procedures", "Hospital Course", "Disposition", "Follow-up", "Follow Up", "Findings")
        + ("Recommendations", "Subjective", "Objective", "Indication", "Indications", "Conclusion", "Conclusions")
    )
)
_TOP_WORDS = frozenset(
    ("recitals", "definitions", "background", "witnesseth", "preamble", "miscellaneous", "term", "termination")
    + ("confidentiality", "indemnification", "assignment", "notices", "payment", "payments", "warranties")
    + ("compensation", "exhibits", "schedules")
)
_FRESH_NUMBERING = ("EXHIBIT", "SCHEDULE", "ANNEX", "APPENDIX", "ATTACHMENT", "ADDENDUM")
_COMPANY = re.compile(r"(?i)\b(?:inc|corp|corporation|incorporated|llc|ltd|limited|gmbh|ag|plc|co|l\.p|lp)\.?$")


@dataclass(frozen=True)
class Heading:
    """One recognised heading: ``label`` (short display text) starts at ``start`` in the text."""

    start: int
    level: int  # 0 articles, 1 top sections, 2 "1.1", 3 "1.1.1"...; definitions sit one below their section
    label: str


@dataclass(frozen=True)
class Clause:
    """The text from one heading to the next, ``[start, end)``, and the headings above it."""

    start: int
    end: int
    path: tuple[str, ...]

    @property
    def heading(self) -> str:
        return render_path(self.path)


@dataclass(frozen=True)
class Structure:
    """A document's clauses in reading order; together they cover the whole text."""

    clauses: tuple[Clause, ...]

    def clause_index(self, offset: int) -> int:
        """Index of the clause holding character ``offset``."""
        return max(bisect_right([c.start for c in self.clauses], offset) - 1, 0)

    def heading_at(self, offset: int) -> str:
        """The heading path at character ``offset`` ("" before the first heading)."""
        return self.clauses[self.clause_index(offset)].heading


def render_path(path: Sequence[str]) -> str:
    """Join the innermost ``MAX_PATH_LEVELS`` labels, dropping outer ones to stay within the cap."""
    labels = [_clip(label, MAX_LABEL_CHARS) for label in path[-MAX_PATH_LEVELS:] if label]
    while len(labels) > 1 and len(SEPARATOR.join(labels)) > MAX_PATH_CHARS:
        labels.pop(0)
    return _clip(SEPARATOR.join(labels), MAX_PATH_CHARS)


def with_heading(text: str, heading: str) -> str:
    """The text to embed for a chunk: its heading path on a line of its own, then the chunk's text."""
    return f"{heading}\n{text}" if heading else text


def common_path(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """The headings every one of ``paths`` lies under (the shared outer labels)."""
    if not paths:
        return ()
    shared = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(shared), len(path)) and shared[n] == path[n]:
            n += 1
        shared = shared[:n]
    return shared


def read_structure(doc: ParsedDocument) -> Structure:
    """Find the headings of ``doc`` and cut its text into clauses, each with its heading path."""
    headings = _Reader(doc.text, {e.start for e in doc.elements}).headings()
    clauses: list[Clause] = []
    stack: list[Heading] = []
    starts = [0] + [h.start for h in headings] + [len(doc.text)]
    if starts[1:2] == [0]:
        starts.pop(0)
    else:
        clauses.append(Clause(0, starts[1], ()))
    for heading, end in zip(headings, starts[2:] if clauses else starts[1:], strict=True):
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        clauses.append(Clause(heading.start, end, tuple(h.label for h in stack)))
    return Structure(tuple(clauses))


@dataclass(frozen=True)
class _Segment:
    start: int
    text: str
    line_first: bool  # starts its line (not after a run of spaces)
    whole_line: bool  # is its whole line


class _Reader:
    """One pass over the text's segments; remembers the numbering so far to judge the next number."""

    def __init__(self, text: str, element_starts: set[int]) -> None:
        self._segments = list(_segments(text))
        self._element_starts = element_starts
        self._seen: dict[str, int] = {}
        for segment in self._segments:
            self._seen[_shape(segment.text)] = self._seen.get(_shape(segment.text), 0) + 1
        self._relative: set[int] = set()
        self._last_number: tuple[int, ...] | None = None
        self._last_article = 0
        self._section_level = 0

    def headings(self) -> list[Heading]:
        found: list[Heading] = []
        skip = -1
        for i, segment in enumerate(self._segments):
            if i == skip:
                continue
            heading, merged = self._classify(i, segment)
            if heading is not None:
                found.append(heading)
                skip = i + 1 if merged else -1
                if heading.start not in self._relative:
                    self._section_level = heading.level
        return found

    def _next(self, i: int) -> _Segment | None:
        return self._segments[i + 1] if i + 1 < len(self._segments) else None

    def _classify(self, i: int, seg: _Segment) -> tuple[Heading | None, bool]:
        if _PAGE.fullmatch(seg.text):
            return None, False
        for numbered in (self._keyword, self._numbered, self._roman):
            found = numbered(i, seg)
            if found is not None:
                return found
        for other in (self._lettered, self._definition, self._medical, self._caps, self._title_case):
            heading = other(i, seg)
            if heading is not None:
                return heading, False
        return None, False

    def _keyword(self, i: int, seg: _Segment) -> tuple[Heading | None, bool] | None:
        m = _KEYWORD.match(seg.text)
        if m is None:
            return None
        number = m.group(2)
        label_head = f"{m.group(1)} {number}"
        if m.group(1).lower() == "article":
            title, merged = self._title_after(i, seg, seg.text[m.end() :])
            if title is None:
                return None
            self._last_article = _number_value(number)
            self._last_number = (self._last_article,)
            return Heading(seg.start, 0, _label(label_head, title)), merged
        title, merged = self._title_after(i, seg, seg.text[m.end() :])
        parts = _parts(number)
        if not title or parts is None or not self._continues(parts, True, _all_caps(title)):
            return None
        return Heading(seg.start, len(parts), _label(label_head, title)), merged

    def _numbered(self, i: int, seg: _Segment) -> tuple[Heading | None, bool] | None:
        m = _NUMBERED.match(seg.text)
        if m is None:
            return None
        number, dot = m.group(1), m.group(2)
        parts = _parts(number)
        rest = seg.text[m.end() :]
        if parts is None or not rest or not (rest[0].isupper() or rest[0] in '"“('):
            return None  # "1.5 million dollars were paid" continues a sentence
        title, merged = self._title_after(i, seg, rest)
        if len(parts) == 1 and not dot and not title:
            return None
        label_head = number + dot
        if title:
            if not self._continues(parts, True, _all_caps(title)):
                return None
            return Heading(seg.start, len(parts), _label(label_head, title)), merged
        if not seg.line_first or not self._continues(parts, titled=False):
            return None
        term = _DEFINITION.match(rest)
        label = f'{label_head} "{term.group(1)}"' if term else label_head
        return Heading(seg.start, len(parts), _clip(label, MAX_LABEL_CHARS)), False

    def _roman(self, i: int, seg: _Segment) -> tuple[Heading | None, bool] | None:
        m = _ROMAN.match(seg.text)
        if m is None or not seg.line_first:
            return None
        value = _number_value(m.group(1))
        title = seg.text[m.end() :].rstrip(".:")
        if value != self._last_article + 1 or not _heading_like(title):
            return None
        self._last_article = value
        self._last_number = (value,)
        return Heading(seg.start, 0, _label(m.group(0).strip(), title)), False

    def _lettered(self, i: int, seg: _Segment) -> Heading | None:
        m = _LETTERED.match(seg.text)
        if m is None or not seg.line_first:
            return None
        title = _run_in_title(seg.text[m.end() :])
        if title is None:
            return None
        self._relative.add(seg.start)
        return Heading(seg.start, self._section_level + 1, _label(m.group(0).strip(), title))

    def _definition(self, i: int, seg: _Segment) -> Heading | None:
        m = _DEFINITION.match(seg.text)
        if m is None or not seg.line_first:
            return None
        self._relative.add(seg.start)
        return Heading(seg.start, self._section_level + 1, _clip(f'"{m.group(1).strip()}"', MAX_LABEL_CHARS))

    def _medical(self, i: int, seg: _Segment) -> Heading | None:
        name, colon, rest = seg.text.partition(":")
        name = name.strip()
        if not seg.line_first or len(name) > 40:
            return None
        if name.lower() in _MEDICAL and (colon or (seg.whole_line and name.isupper())):
            return Heading(seg.start, 1, name)
        return None

    def _caps(self, i: int, seg: _Segment) -> Heading | None:
        text = seg.text.rstrip(".")
        if not seg.line_first or self._seen[_shape(seg.text)] > 1 or not _is_caps_heading(text):
            return None
        if not self._before_body(i, strict=False):
            return None
        if text.split()[0] in _FRESH_NUMBERING:
            self._last_number = None
        return Heading(seg.start, 1, _clip(text, MAX_LABEL_CHARS))

    def _title_case(self, i: int, seg: _Segment) -> Heading | None:
        text = seg.text.rstrip(":")
        if not seg.whole_line or seg.start not in self._element_starts or self._seen[_shape(seg.text)] > 1:
            return None
        if text.lower() in _FORM_FIELDS or any(ch.isdigit() for ch in text) or text.endswith((".", ",", ";")):
            return None
        if _all_caps(text) or not _title_cased(text) or len(text.split()) > 8 or not self._before_body(i, strict=True):
            return None
        return Heading(seg.start, 1, _clip(text, MAX_LABEL_CHARS))

    def _title_after(self, i: int, seg: _Segment, rest: str) -> tuple[str | None, bool]:
        """The heading's title: the rest of a short line, a run-in title, or a caps line just below."""
        rest = rest.strip()
        if not rest:
            below = self._next(i)
            if below is not None and below.line_first and _is_caps_heading(below.text):
                return below.text.rstrip("."), True
            return "", False
        if _heading_like(rest.rstrip(".:")):
            return rest.rstrip(".:"), False
        return _run_in_title(rest), False

    def _continues(self, parts: tuple[int, ...], titled: bool, caps: bool = False) -> bool:
        """Whether ``parts`` plausibly follows the last number seen (a gap of up to 3 for titled headings).

        Numbering restarts at 1 only under a capitalised title: a list "1. ..., 2. ..." inside a
        clause is not a new section.
        """
        last = self._last_number
        first = last is None and titled and all(p <= 1 for p in parts[1:])  # a document may start at any number
        restart = caps and all(p == 1 for p in parts[1:]) and parts[0] <= 3
        ok = first or restart or _follows(parts, last, 3 if titled else 1)
        if ok:
            self._last_number = parts
        return ok

    def _before_body(self, i: int, strict: bool) -> bool:
        """Whether the next segment is prose (a heading stands before text, not before a table or a name)."""
        below = self._next(i)
        if below is None:
            return False
        words = below.text.split()
        if words[0].rstrip(":").lower() in ("by", "/s/", "name", "title", "date"):
            return False
        return not strict or (len(below.text) >= 60 and sum(ch.islower() for ch in below.text) > len(below.text) // 3)


def _segments(text: str) -> Iterator[_Segment]:
    """Each line's runs of text between runs of 3+ spaces; a bare number keeps the title after it."""
    offset = 0
    for line in text.splitlines(keepends=True):
        spans = [(m.start(), m.end()) for m in _SEGMENT.finditer(line)]
        merged: list[tuple[int, int]] = []
        for span in spans:
            if merged and _BARE_NUMBER.fullmatch(line, *merged[-1]):
                merged[-1] = (merged[-1][0], span[1])
            else:
                merged.append(span)
        for n, (a, b) in enumerate(merged):
            yield _Segment(offset + a, line[a:b], n == 0, len(merged) == 1)
        offset += len(line)


def _shape(line: str) -> str:
    """A line with its digits blanked: running headers and footers repeat with a new page number."""
    return re.sub(r"\d+", "#", line)


def _parts(number: str) -> tuple[int, ...] | None:
    if number.isdigit() or "." in number:
        values = tuple(int(p) for p in number.split(".") if p)
        return values if values and values[0] > 0 else None
    return (_number_value(number),)


def _number_value(number: str) -> int:
    if number.isdigit():
        return int(number)
    values = [_ROMAN_VALUES[ch] for ch in number.upper()]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _follows(parts: tuple[int, ...], last: tuple[int, ...] | None, gap: int) -> bool:
    """``parts`` steps on (by 1..gap) from ``last`` at some level: a sibling, an uncle, or a child."""
    if last is None:
        return parts[0] <= gap and all(p <= 1 for p in parts[1:])
    for depth in range(min(len(last) + 1, len(parts))):
        if parts[:depth] != last[:depth]:
            return False
        step = parts[depth] - (last[depth] if depth < len(last) else 0)
        if 1 <= step <= gap and all(p <= 1 for p in parts[depth + 1 :]) and len(parts) <= depth + 2:
            return True
    return False


def _run_in_title(rest: str) -> str | None:
    """``Governing Law`` in ``Governing Law. This Agreement ...``: a short title-cased lead-in."""
    m = _RUN_IN.match(rest)
    if m is None:
        return None
    title = m.group(1).strip()
    if len(title.split()) > 8 or ". " in title:
        return None
    if _all_caps(title):
        return title
    return title if _title_cased(title) and not m.group(2).islower() else None


def _heading_like(text: str) -> bool:
    """A short title-cased or capitalised phrase with no sentence in it."""
    if not text or len(text) > MAX_LABEL_CHARS or len(text.split()) > 10 or "$" in text or "%" in text:
        return False
    return ". " not in text and (_all_caps(text) or _title_cased(text))


def _title_cased(text: str) -> bool:
    words = [w.strip("()\"“”,;'&/-") for w in text.split()]
    words = [w for w in words if w]
    if not words or not words[0][0].isupper() or not any(len(w) >= 3 for w in words):
        return False
    significant = [w for w in words if w.lower() not in _SMALL_WORDS]
    return bool(significant) and all(w[0].isupper() or not w[0].isalpha() for w in significant)


def _all_caps(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return 4 <= len(text) <= MAX_LABEL_CHARS and len(letters) >= 4 and not any(ch.islower() for ch in letters)


def _is_caps_heading(text: str) -> bool:
    """An unnumbered capitalised heading line: not a party's name, a signature label or page furniture."""
    text = text.strip().rstrip(".")
    if not _all_caps(text) or not text[0].isalpha():
        return False
    if text.endswith(":") and text[:-1].lower() not in _TOP_WORDS | _MEDICAL:
        return False
    text = text.rstrip(":")
    if text.endswith((",", ";")) or "," in text or _COMPANY.search(text) or _PAGE.fullmatch(text):
        return False
    words = text.split()
    return len(words) >= 2 or words[0].lower() in _TOP_WORDS or words[0].lower() in _MEDICAL


def _label(head: str, title: str) -> str:
    return _clip(f"{head} {title}".strip(), MAX_LABEL_CHARS)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

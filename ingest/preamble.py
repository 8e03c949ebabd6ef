"""What a document's opening says about itself: its title, its parties and its date.

A contract names itself in its first lines: "CO-BRANDING AND SERVICES AGREEMENT ... effective as of
October 1, 1999, between RSL COM PrimeCall, Inc., a Delaware corporation ("PrimeCall"), and
deltathree.com, Inc. ...". A lawyer asks about "the co-branding agreement between PrimeCall and
deltathree", so these names are how a question finds its document (``service.retrieval.focused``),
how a listing shows it, and what a caller filters on. They are read from the redacted text (what
the index holds), kept sealed under the document's key like its title (:func:`seal`), and gone
with it on erasure.

Reading is conservative: names come only from a "between/among ..." clause in the opening, so an
abstract, a letter or a medical note yields no parties (and is never taken to be named by a
question's capitalised words).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from ingest.errors import EnclaveError
from ingest.keys.crypto import open_text, seal_text

if TYPE_CHECKING:
    from ingest.keys.keyring import KeyRing
    from ingest.store.models import Document

log = logging.getLogger(__name__)

OPENING_CHARS = 3000  # where the parties and the date are looked for
CLAUSE_CHARS = 700  # the longest "between ..." clause read
DESCRIBED_CHARS = 1200  # without one, where names described as legal persons are looked for
# a caps title run into the name that follows it: everything up to its last document word goes
DOCUMENT_WORDS = re.compile(r"^.*\b(?:AGREEMENT|CONTRACT|LEASE|LICENSE|AMENDMENT|ADDENDUM|Agreement|Contract)\b\s*")
MAX_PARTIES = 6
MAX_NAME = 80

MONTH_NAMES = ["january", "february", "march", "april", "may", "june"]
MONTH_NAMES += ["july", "august", "september", "october", "november", "december"]
CONNECTOR = re.compile(r"\b(?:(?:by\s+and\s+)?(?:between|among(?:st)?)|entered\s+into\s+by)\b\s*:?\s*", re.I)
# where the parties clause ends: recitals, the operative words, or the next sentence about "this agreement"
CLAUSE_END = re.compile(
    r"\b(?:WHEREAS|W\s?I\s?T\s?N\s?E\s?S\s?S\s?E\s?T\s?H|RECITALS?|BACKGROUND|PREAMBLE|NOW,?\s+THEREFORE"
    r"|IN\s+CONSIDERATION|(?i:this\s+(?:[\w-]+\s+){0,4}agreement\s+(?:is|shall|sets))|(?i:individually)|(?i:are\s+each)|(?i:(?:are|is)\s+(?:collectively|together)))\b"
)
ALIAS = re.compile(
    r"\(\s*(?:each\s+|individually\s+|hereinafter\s+)?(?:the\s+|a\s+)?[\"“”']([^\"“”']{2,40})[\"“”']", re.I
)
GENERIC_ALIASES = {"agreement", "effective date", "execution date", "parties", "party", "contract", "recitals"}
# one party per segment: "X, a Delaware corporation ("X"), and Y ("Y"); Z ..." -> X..., Y..., Z...
SEGMENT_SPLIT = re.compile(r";|,?\s+\b(?i:and)\b\s+|\)\s*,\s+(?=[A-Z])")
# a name: capitalised words (allowing "Inc.", "L.L.C.", "deltathree.com", "of"/"for"/"the" inside)
NAME = re.compile(
    r"(?:[A-Z0-9][\w&.'’/-]*|[a-z][\w-]*\.(?:com|net|org|io)\b)"
    r"(?:,?\s+(?:(?:of|for|the|de|du|la|von|van|&)\s+)?(?:[A-Z0-9][\w&.'’/-]*|[a-z][\w-]*\.(?:com|net|org|io)\b))*"
)
# a legal person: a corporate word in the name, or a descriptor or a defined short name right after it
CORPORATE = re.compile(
    r"\b(?:Inc|Incorporated|Corp|Corporation|Ltd|Limited|LLC|L\.L\.C|LLP|LP|L\.P|Co|Company|GmbH|S\.A|S\.R\.L|N\.V"
    r"|B\.V|AG|PLC|SE|Bank|Trust|Fund|Partners|Partnership|Holdings|Group|University|Association|Foundation)\b\.?",
    re.I,
)
DESCRIBED = re.compile(
    r"^\s*(?:\((?:\s*(?:each|individually|hereinafter(?:\s+referred\s+to)?(?:\s+as)?|the|a)\s+)*[\"“”']|,\s*(?:a|an|the)\s+(?:[\w-]+\s+){0,6}?(?:corporation|company|partnership|individual|association"
    r"|bank|trust|entity|organi[sz]ation|limited|society|resident|citizen|person)\b|,?\s*(?:having|with)\s+(?:its|an?)"
    r"\s+(?:principal|registered|place|address|office))",
    re.I,
)
NOT_A_NAME = re.compile(
    r"(?:the|and|each|both|either|all|limited|company|parties|party|state|section|article|exhibit|page|this|that)"
    r"|(?:capitalized|hereinafter|recitals?|witness\w*|vat|whereas|between|together)\b.*",
    re.I,
)
NAME_ENDS = {"with", "dated", "date", "effective", "as", "made", "having", "whose", "located", "address", *MONTH_NAMES}
ABBREVIATIONS = {"inc", "corp", "co", "ltd", "mr", "mrs", "ms", "dr", "st", "no", "jr", "sr", "bros", "assn", "etc"}

TITLE_CAPS = re.compile(
    r"\b((?:(?!(?:AGREEMENT|CONTRACT|THIS|EXHIBIT|EXECUTION|COPY|CONFIDENTIAL|[A-Z]|[IVX]+)\b)[A-Z][A-Z&'’-]*,?\s+){0,7}(?:AGREEMENT|CONTRACT|LEASE|LICENSE|AMENDMENT|ADDENDUM|MEMORANDUM"
    r"|ARRANGEMENT|UNDERTAKING|DEED|NOTE|PLAN)S?)\b"
)
TITLE_THIS = re.compile(r"\bThis\s+((?:[A-Z][\w&'’-]*\s+){1,6}Agreement)\b")

MONTHS = {m: i for i, m in enumerate(MONTH_NAMES, start=1)}
MONTH = r"(?P<month>January|February|March|April|May|June|July|August|September|October|November|December)"
DATES = [
    re.compile(MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\s*,?\s+(?P<year>(?:19|20)\d\d)\b", re.I),
    re.compile(
        r"\b(?P<day>\d{1,2})\s*(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?" + MONTH + r",?\s+(?P<year>(?:19|20)\d\d)\b",
        re.I,
    ),
    re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<nmonth>\d\d)-(?P<day>\d\d)\b"),
    re.compile(r"\b(?P<nmonth>\d{1,2})/(?P<day>\d{1,2})/(?P<year>(?:19|20)\d\d)\b"),
]
EFFECTIVE = re.compile(r"\beffective\b", re.I)


@dataclass(frozen=True)
class Preamble:
    """The names and date a document gives itself; empty where its opening gives none."""

    title: str = ""
    parties: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)  # the short names the parties are defined as ("PrimeCall")
    date: str | None = None  # ISO date the opening states ("dated as of", "effective as of", "this 1st day of")
    date_kind: str | None = None  # "effective" or "dated"

    @property
    def empty(self) -> bool:
        return not (self.title or self.parties or self.date)

    @property
    def names(self) -> str:
        """The words a question uses to name the document: its title, its parties and their short names."""
        return "; ".join(([self.title] if self.title else []) + self.parties + self.aliases)

    def names_party(self, party: str) -> bool:
        """``party``'s words, in order and whole, in one of the parties, short names or the title (any case)."""
        wanted = _words(party)
        return bool(wanted) and any(
            f" {wanted} " in f" {_words(n)} " for n in [self.title, *self.parties, *self.aliases]
        )

    def public(self) -> dict[str, Any]:
        """The form shown in document listings."""
        return asdict(self)


def extract(text: str) -> Preamble:
    """Read title, parties and date from the opening of ``text`` (the document's extracted, redacted text)."""
    opening = text[:OPENING_CHARS]
    parties, aliases = _parties(opening)
    found_date, kind = _date(opening)
    return Preamble(title=_title(opening), parties=parties, aliases=aliases, date=found_date, date_kind=kind)


def _parties(opening: str) -> tuple[list[str], list[str]]:
    for connector in CONNECTOR.finditer(opening):
        clause = opening[connector.end() : connector.end() + CLAUSE_CHARS]
        end = CLAUSE_END.search(clause)
        clause = clause[: end.start()] if end else clause
        parties = _names(clause)
        aliases = _aliases(clause)
        parties = _not_aliases(parties, aliases)
        if parties:  # "between" inside a title line with no names after it: try the next one
            return parties, aliases[:MAX_PARTIES]
    return _described(opening[:DESCRIBED_CHARS])


def _described(opening: str) -> tuple[list[str], list[str]]:
    """Without a "between" clause: the names the opening describes as legal persons where it names them
    ("Mutual Insurance Corporation of America, a Michigan insurance corporation", "X, L.P. (the "Investor")")."""
    names: list[str] = []
    for match in NAME.finditer(opening):
        name = DOCUMENT_WORDS.sub("", _clean(match.group(0)))  # "EXHIBIT 10.26 MICOA AGENCY AGREEMENT Mutual ..."
        if not DESCRIBED.match(opening[match.end() :]) or (len(name.split()) < 2 and not CORPORATE.search(name)):
            continue
        if len(re.findall(r"[A-Za-z]", name)) >= 2 and not NOT_A_NAME.fullmatch(name) and not name[0].isdigit():
            names.append(name[:MAX_NAME])
    if not names:
        return [], []
    clause_end = opening.rfind(names[-1]) + len(names[-1]) + 120  # the short names defined right after them
    aliases = _aliases(opening[:clause_end])
    return _not_aliases(_unique(names), aliases)[:MAX_PARTIES], aliases[:MAX_PARTIES]


def _aliases(text: str) -> list[str]:
    """The short names ``text`` defines ("PrimeCall"), but not "Agreement" or "Effective Date"."""
    return _unique([a.strip() for a in ALIAS.findall(text) if a.strip().lower() not in GENERIC_ALIASES])


def _not_aliases(names: list[str], aliases: list[str]) -> list[str]:
    """A party named only by its short name ("Shipper") is a role, not another party."""
    short = {a.lower() for a in aliases}
    return [n for n in names if n.lower() not in short]


def _names(clause: str) -> list[str]:
    """The legal persons a parties clause names, each at the start of its segment."""
    names: list[str] = []
    clause = " ".join(re.sub(r"[-_=*]{3,}", " ", clause).split())  # typewriter underlines between the words
    for segment in SEGMENT_SPLIT.split(clause):
        segment = segment.lstrip(" ,.:;()")
        match = NAME.match(segment)
        if match is None:
            continue
        name = _clean(match.group(0))
        if len(re.findall(r"[A-Za-z]", name)) < 2 or NOT_A_NAME.fullmatch(name) or name[0].isdigit():
            continue
        corporate = CORPORATE.search(name) is not None and len(name.split()) > 1
        if not (corporate or DESCRIBED.match(segment[len(match.group(0)) :])):
            continue  # "between meals and at night", "interactions between CIMT and ABPI": no one is named
        names.append(name[:MAX_NAME])
        if len(names) >= MAX_PARTIES:
            break
    return _unique(names)


def _clean(run: str) -> str:
    """A matched run of capitalised words cut where the name ends: after a sentence's full stop, before an
    address number ("Sicap Ltd, Bernstrasse 34" -> "Sicap Ltd, Bernstrasse")."""
    kept: list[str] = []
    for token in run.split():
        bare = token.strip(",.")
        if kept and (bare.isdigit() or bare.lower() in NAME_ENDS):
            break
        kept.append(token)
        if token.endswith(".") and "." not in token[:-1] and len(bare) > 1 and bare.lower() not in ABBREVIATIONS:
            break
    return " ".join(kept).rstrip(",")


def _title(opening: str) -> str:
    head = opening[:1000]
    caps = TITLE_CAPS.search(head)
    if caps:
        words = " ".join(caps.group(1).split()).strip(",")
        if words not in {"AGREEMENT", "CONTRACT"}:
            return words.title().replace("'S", "'s").replace("’S", "’s")
    this = TITLE_THIS.search(head)
    return " ".join(this.group(1).split()) if this else ""


def _date(opening: str) -> tuple[str | None, str | None]:
    best: tuple[int, str, str] | None = None
    for pattern in DATES:
        for match in pattern.finditer(opening):
            iso = _iso(match)
            if iso is None:
                continue
            around = opening[max(0, match.start() - 60) : match.start()] + opening[match.end() : match.end() + 30]
            kind = "effective" if EFFECTIVE.search(around) else "dated"  # "effective as of X", "X (the Effective Date)"
            if best is None or match.start() < best[0]:
                best = (match.start(), iso, kind)
            break
    return (best[1], best[2]) if best else (None, None)


def _iso(match: re.Match[str]) -> str | None:
    parts = match.groupdict()
    month = MONTHS[parts["month"].lower()] if parts.get("month") else int(parts.get("nmonth") or 0)
    try:
        return date(int(parts["year"]), month, int(parts["day"])).isoformat()
    except ValueError:
        return None


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.lower().rstrip(".")
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


# -- at rest -----------------------------------------------------------------------------------------


def _aad(document_id: str) -> bytes:
    return f"document:{document_id}:preamble".encode()


def seal(key: bytes, document_id: str, preamble: Preamble) -> str | None:
    """The stored form (None when the opening gave nothing), sealed under the document's key."""
    return None if preamble.empty else seal_text(key, json.dumps(asdict(preamble)), _aad(document_id))


def open_sealed(key: bytes, document_id: str, stored: str | None) -> Preamble:
    """The preamble of a stored row. :raises KeyDestroyed: erased. :raises DecryptionFailed: altered."""
    if not stored:
        return Preamble()
    return from_json(open_text(key, stored, _aad(document_id)))


def of_document(keyring: KeyRing, document: Document) -> Preamble:
    """What the document's row holds, opened (empty when it holds none, or the document was erased or altered)."""
    return of_stored(keyring, document.id, document.preamble)


def of_stored(keyring: KeyRing, document_id: str, stored: str | None) -> Preamble:
    """:func:`of_document` from the row's two columns (a lookup that reads no more of the row)."""
    try:
        return open_sealed(keyring.document_key(document_id), document_id, stored)
    except EnclaveError as exc:
        log.warning("document.preamble_withheld document=%s reason=%s", document_id, exc.code)
        return Preamble()


def from_json(raw: str) -> Preamble:
    data = json.loads(raw)
    return Preamble(
        title=str(data.get("title", "")),
        parties=[str(p) for p in data.get("parties", [])],
        aliases=[str(a) for a in data.get("aliases", [])],
        date=data.get("date"),
        date_kind=data.get("date_kind"),
    )

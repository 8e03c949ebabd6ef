"""A generated answer cut into sentences, each with the source numbers it cites.

Markers may follow the full stop ("… applies. [1]") or precede it ("… applies [1]."); either way they
belong to the sentence before them. :class:`SentenceBuffer` does the same for a stream, releasing a
sentence only once the next one has begun (so its trailing markers have arrived).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.answering.prompt import MARKER
from service.answering.sentences import split

LEADING_MARKERS = re.compile(r"^(?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]\s*[.,;:]?)+\s*")
ONLY_MARKERS = re.compile(LEADING_MARKERS.pattern + "$")


@dataclass(frozen=True)
class Piece:
    """One generated sentence: as written, without markers, and the source numbers it cites (in range or not)."""

    raw: str
    plain: str
    numbers: list[int]


def pieces(text: str) -> list[Piece]:
    """The sentences of a generated answer, trailing marker-only fragments joined to the sentence before."""
    raws: list[str] = []
    for sentence in split(text):
        leading = LEADING_MARKERS.match(sentence.text)
        rest = sentence.text[leading.end() :] if leading and raws else sentence.text
        if leading and raws:
            raws[-1] = f"{raws[-1]} {leading.group(0).strip()}"
        if rest:
            raws.append(rest)
    return [_piece(raw) for raw in raws]


def _piece(raw: str) -> Piece:
    numbers = [int(n) for m in MARKER.finditer(raw) for n in m.group(1).split(",")]
    plain = " ".join(MARKER.sub(" ", raw).split())
    plain = re.sub(r"\s+([.,;:!?])", r"\1", plain)
    return Piece(raw=raw, plain=plain, numbers=numbers)


class SentenceBuffer:
    """Collects streamed text and hands out whole sentences."""

    def __init__(self) -> None:
        self.text = ""

    def feed(self, delta: str) -> list[Piece]:
        """Sentences completed by ``delta``: all but the last one begun, once it has more than markers."""
        self.text += delta
        found = split(self.text)
        if len(found) < 2 or ONLY_MARKERS.match(found[-1].text):
            return []
        leading = LEADING_MARKERS.match(found[-1].text)
        cut = found[-1].start + (leading.end() if leading else 0)  # its leading markers close the one before
        done, self.text = self.text[:cut], self.text[cut:]
        return pieces(done)

    def flush(self) -> list[Piece]:
        done, self.text = self.text, ""
        return pieces(done)

"""Parser adapter backed by ``unstructured`` (PDF, DOCX, PPTX, XLSX, HTML) plus exact text formats.

Plain text, Markdown and CSV never go through ``unstructured``: their text is the file itself
(``ingest.parsing.text``). E-mail is split by the standard library (``ingest.parsing.emails``),
its HTML-only bodies by ``unstructured``. Every other format becomes the texts of
``unstructured``'s elements joined by a blank line (table rows by a newline, one element per
row), with each element's offsets recorded.

PDFs use the "fast" strategy (the text layer); pages without one are rendered and read by
Tesseract (``ingest.parsing.ocr``), page by page, and their elements are marked ``ocr``.
"""

from __future__ import annotations

import html
import importlib.util
import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, BinaryIO, Protocol

from ingest.errors import CorruptDocument, EmptyDocument, EnclaveError, IngestError
from ingest.parsing import sniff
from ingest.parsing.emails import parse_email
from ingest.parsing.pdf import EMPTY_PDF, Piece, inspect_pdf, meaningful_title, with_ocr
from ingest.parsing.port import Element, ParsedDocument
from ingest.parsing.tabular import html_table_rows
from ingest.parsing.text import parse_csv, parse_text

# unstructured phones home (Scarf analytics) and prints an advert unless told not to; set before
# it is imported anywhere in the process. Nothing may be downloaded at run time.
for _name in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "HF_HUB_OFFLINE", "UNSTRUCTURED_DISABLE_NOTICE"):
    os.environ.setdefault(_name, "1")

SEPARATOR = "\n\n"
ROW_SEPARATOR = "\n"
_PAGED = {sniff.PDF, sniff.PPTX, sniff.XLSX}  # formats whose page_number means something stable
_KINDS = {
    "Title": "title",
    "NarrativeText": "text",
    "UncategorizedText": "text",
    "Text": "text",
    "ListItem": "list",
    "Table": "table",
}
_LABELS = {
    sniff.PDF: "PDF",
    sniff.DOCX: "DOCX",
    sniff.PPTX: "PPTX",
    sniff.XLSX: "XLSX",
    sniff.HTML: "HTML",
    sniff.EML: "e-mail",
}
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


class _LibElement(Protocol):
    """The part of an ``unstructured`` element this adapter reads."""

    @property
    def text(self) -> str: ...

    @property
    def category(self) -> str: ...

    @property
    def metadata(self) -> Any: ...


Partitioner = Callable[[BinaryIO], Sequence[_LibElement]]


class UnstructuredParser:
    """The default ``Parser``: ``unstructured`` for rich formats, exact decoding for text.

    ``ocr_workers`` caps the Tesseract processes run at once for one document (default: one per core).
    """

    def __init__(self, ocr_workers: int | None = None) -> None:
        self._partitioners: dict[str, Partitioner] | None = None
        self._ocr_workers = ocr_workers

    def warm_up(self) -> None:
        """Import the partitioners and load spaCy once, so the first upload is not slow.

        :raises EnclaveError: the offline spaCy model alias is not installed.
        """
        self._ready_partitioners()

    def close(self) -> None:
        """Nothing to release: the partitioners are modules, and OCR's pool lives for one document."""

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse one upload; see ``Parser`` for the contract and the errors raised."""
        mime = sniff.sniff_mime(data, filename)
        if mime in (sniff.TEXT, sniff.MARKDOWN):
            return parse_text(sniff.decode_text(data), mime)
        if mime == sniff.CSV:
            return parse_csv(sniff.decode_text(data))
        if mime == sniff.EML:
            return self._parse_email(data)
        if mime == sniff.PDF:
            return self._parse_pdf(data[data.index(b"%PDF-") :])  # junk before the header shifts xref offsets
        pieces = _pieces(self._partition(data, mime), mime)
        title = _html_title(data) if mime == sniff.HTML else None
        return assemble(pieces, mime, _page_count(pieces, 1 if mime in _PAGED else None), title)

    def _parse_pdf(self, data: bytes) -> ParsedDocument:
        info = inspect_pdf(data)
        pieces = with_ocr(data, _pieces(self._partition(data, sniff.PDF), sniff.PDF), self._ocr_workers)
        return assemble(pieces, sniff.PDF, _page_count(pieces, info.pages), info.title)

    def _parse_email(self, data: bytes) -> ParsedDocument:
        blocks, subject, attachments = parse_email(data, self._html_blocks)
        pieces = [Piece(text, kind, None) for text, kind in blocks]
        return replace(assemble(pieces, sniff.EML, 1, subject), attachments=tuple(attachments))

    def _html_blocks(self, markup: str) -> list[tuple[str, str]]:
        """An HTML e-mail body as ``(text, kind)`` blocks (an empty body gives none)."""
        if not markup.strip():
            return []
        found = self._partition(markup.encode("utf-8"), sniff.HTML)
        return [(piece.text, piece.kind) for piece in _pieces(found, sniff.HTML)]

    def _partition(self, data: bytes, mime: str) -> Sequence[_LibElement]:
        """Run one partitioner, turning any library failure into a message the uploader can act on."""
        partitioner = self._ready_partitioners()[mime]
        try:
            return partitioner(io.BytesIO(data))
        except IngestError:
            raise
        except Exception as exc:  # third-party parsers raise anything; re-raised as a domain error
            raise CorruptDocument(
                f"the {_LABELS[mime]} file could not be read ({type(exc).__name__}); it may be damaged, "
                "re-export it or upload the original"
            ) from exc

    def _ready_partitioners(self) -> dict[str, Partitioner]:
        """Load once; ``unstructured`` would otherwise try to download the spaCy model from GitHub
        on first use (hanging for minutes where there is no internet), so its absence fails here."""
        if self._partitioners is None:
            if importlib.util.find_spec("en_core_web_sm") is None:
                raise EnclaveError(
                    "spaCy model en_core_web_sm is not installed; run `pip install ./vendor/en_core_web_sm`"
                )
            from unstructured.nlp.tokenize import pos_tag  # lazy: unstructured takes seconds to import

            pos_tag("Warm up the tagger.")
            self._partitioners = _load_partitioners()
        return self._partitioners


def _load_partitioners() -> dict[str, Partitioner]:
    """Import ``unstructured`` lazily: it costs seconds, and importing this module must not."""
    from unstructured.partition.docx import partition_docx  # lazy: unstructured
    from unstructured.partition.html import partition_html  # lazy: unstructured
    from unstructured.partition.pdf import partition_pdf  # lazy: unstructured
    from unstructured.partition.pptx import partition_pptx  # lazy: unstructured
    from unstructured.partition.xlsx import partition_xlsx  # lazy: unstructured

    return {
        # languages: the English text-type rules unstructured applies to PDFs in any case, said outright, so it
        # skips langdetect over each whole document (about 5 % of a PDF's parse) for metadata Enclave never reads
        sniff.PDF: lambda file: partition_pdf(file=file, strategy="fast", languages=["eng"]),
        sniff.DOCX: lambda file: partition_docx(file=file),
        sniff.PPTX: lambda file: partition_pptx(file=file),
        sniff.XLSX: lambda file: partition_xlsx(file=file),
        sniff.HTML: lambda file: partition_html(file=file),
    }


def _pieces(found: Sequence[_LibElement], mime: str) -> list[Piece]:
    """Library elements as pieces; a table becomes one piece per non-empty row."""
    paged = mime in _PAGED
    pieces: list[Piece] = []
    for item in found:
        page = _page_of(item) if paged else None
        rows = _table_rows(item)
        if rows:
            pieces.append(Piece(rows[0], "table", page))
            pieces.extend(Piece(row, "table", page, joiner=ROW_SEPARATOR) for row in rows[1:])
        elif (item.text or "").strip():
            pieces.append(Piece(item.text, _kind(item.category), page))
    return pieces


def _table_rows(item: _LibElement) -> list[str]:
    if item.category != "Table":
        return []
    markup = getattr(item.metadata, "text_as_html", None)
    return html_table_rows(markup) if isinstance(markup, str) and markup else []


def assemble(pieces: Sequence[Piece], mime: str, pages: int, title: str | None) -> ParsedDocument:
    """Join the pieces' texts, recording where each lands; choose the title.

    :raises EmptyDocument: no piece carries text.
    """
    parts: list[str] = []
    elements: list[Element] = []
    offset = 0
    for piece in pieces:
        text = piece.text.strip()
        if not text:
            continue
        if parts:
            parts.append(piece.joiner)
            offset += len(piece.joiner)
        elements.append(Element(text, offset, offset + len(text), piece.page, piece.kind, piece.ocr))
        parts.append(text)
        offset += len(text)
    if not elements:
        raise EmptyDocument(_empty_message(mime))
    return ParsedDocument("".join(parts), elements, pages, mime, _choose_title(mime, title, elements))


def _page_of(item: _LibElement) -> int | None:
    page = getattr(item.metadata, "page_number", None)
    return page if isinstance(page, int) and page >= 1 else None


def _page_count(pieces: Sequence[Piece], floor: int | None) -> int:
    """The format's own count (pypdf's for PDFs) or, if higher, the last page any piece is on."""
    if floor is None:
        return 1
    return max([floor, *(piece.page for piece in pieces if piece.page is not None)])


def _kind(category: str) -> str:
    return _KINDS.get(category, category.lower())


def _choose_title(mime: str, title: str | None, elements: list[Element]) -> str | None:
    """Metadata titles where the format has them; a first heading only where headings are styled.

    ``unstructured``'s "Title" on PDFs is a guess from short lines, so it is not used there.
    """
    if title or mime in (sniff.PDF, sniff.EML):
        return title
    if mime in (sniff.DOCX, sniff.PPTX, sniff.HTML):
        return next((e.text for e in elements if e.kind == "title"), None)
    return None


def _html_title(data: bytes) -> str | None:
    """The ``<title>``, which ``unstructured`` does not return as an element."""
    match = _HTML_TITLE.search(data)
    if match is None:
        return None
    raw = match.group(1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # the de facto default of legacy pages
    return meaningful_title(html.unescape(text))


def _empty_message(mime: str) -> str:
    if mime == sniff.PDF:
        return EMPTY_PDF
    return (
        f"no extractable text: the {_LABELS[mime]} file holds no text (only images, charts or empty cells); "
        "upload a copy with typed text, or export it as PDF so image-only pages are read by OCR"
    )


__all__ = ["SEPARATOR", "UnstructuredParser", "assemble", "parse_csv", "parse_text"]

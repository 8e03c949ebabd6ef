"""Parser adapter backed by ``unstructured`` (PDF, DOCX, PPTX, XLSX, HTML) plus exact plain text.

Plain text and Markdown never go through ``unstructured``: citations and evaluation spans are
``str`` offsets into the uploaded file, so ``ParsedDocument.text`` must be the file itself, and
paragraphs are located in it rather than re-extracted. Every other format becomes the texts of
``unstructured``'s elements joined by a blank line, with each element's offsets recorded.

PDFs use the "fast" strategy (the text layer only); a PDF without one is an ``EmptyDocument``
until OCR arrives. pypdf checks encryption and integrity first, because ``unstructured`` silently
returns nothing for a password-protected or broken PDF instead of failing.
"""

from __future__ import annotations

import html
import importlib.util
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

from ingest.errors import CorruptDocument, EmptyDocument, EnclaveError, EncryptedDocument, IngestError
from ingest.parsing import sniff
from ingest.parsing.port import Element, ParsedDocument

# unstructured phones home (Scarf analytics) and prints an advert unless told not to; set before
# it is imported anywhere in the process. Nothing may be downloaded at run time.
for _name in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS", "HF_HUB_OFFLINE", "UNSTRUCTURED_DISABLE_NOTICE"):
    os.environ.setdefault(_name, "1")

SEPARATOR = "\n\n"
_PAGED = {sniff.PDF, sniff.PPTX, sniff.XLSX}  # formats whose page_number means something stable
_KINDS = {
    "Title": "title",
    "NarrativeText": "text",
    "UncategorizedText": "text",
    "Text": "text",
    "ListItem": "list",
    "Table": "table",
}
_LABELS = {sniff.PDF: "PDF", sniff.DOCX: "DOCX", sniff.PPTX: "PPTX", sniff.XLSX: "XLSX", sniff.HTML: "HTML"}
_MD_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")
_MD_FENCE = re.compile(r" {0,3}(?:```|~~~)")
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_PLACEHOLDER_TITLES = {"untitled", "blank", "powerpoint presentation", "document", "title"}
_FILE_NAME = re.compile(r".+\.(?:pdf|docx?|pptx?|xlsx?|rtf|txt|indd|tiff?|jpe?g|png)$", re.IGNORECASE)


class _LibElement(Protocol):
    """The part of an ``unstructured`` element this adapter reads."""

    @property
    def text(self) -> str: ...

    @property
    def category(self) -> str: ...

    @property
    def metadata(self) -> Any: ...


Partitioner = Callable[[BinaryIO], Sequence[_LibElement]]


@dataclass(frozen=True)
class _PdfInfo:
    pages: int
    title: str | None


class UnstructuredParser:
    """The default ``Parser``: ``unstructured`` for rich formats, exact decoding for text."""

    def __init__(self) -> None:
        self._partitioners: dict[str, Partitioner] | None = None

    def warm_up(self) -> None:
        """Import the partitioners and load spaCy once, so the first upload is not slow.

        :raises EnclaveError: the offline spaCy model alias is not installed.
        """
        self._ready_partitioners()

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse one upload; see ``Parser`` for the contract and the errors raised."""
        mime = sniff.sniff_mime(data, filename)
        if mime in (sniff.TEXT, sniff.MARKDOWN):
            return parse_text(sniff.decode_text(data), mime)
        pdf = None
        if mime == sniff.PDF:
            data = data[data.index(b"%PDF-") :]  # junk before the header shifts pdfminer's xref offsets
            pdf = _inspect_pdf(data)
        found = _partition(self._ready_partitioners()[mime], data, mime)
        return _assemble(found, mime, pdf, _html_title(data) if mime == sniff.HTML else None)

    def _ready_partitioners(self) -> dict[str, Partitioner]:
        """Load once; ``unstructured`` would otherwise try to download the spaCy model from GitHub
        on first use (hanging for minutes where there is no internet), so its absence fails here."""
        if self._partitioners is None:
            if importlib.util.find_spec("en_core_web_sm") is None:
                raise EnclaveError(
                    "spaCy model en_core_web_sm is not installed; run `pip install ./vendor/en_core_web_sm`"
                )
            from unstructured.nlp.tokenize import pos_tag

            pos_tag("Warm up the tagger.")
            self._partitioners = _load_partitioners()
        return self._partitioners


def _load_partitioners() -> dict[str, Partitioner]:
    """Import ``unstructured`` lazily: it costs seconds, and importing this module must not."""
    from unstructured.partition.docx import partition_docx
    from unstructured.partition.html import partition_html
    from unstructured.partition.pdf import partition_pdf
    from unstructured.partition.pptx import partition_pptx
    from unstructured.partition.xlsx import partition_xlsx

    return {
        sniff.PDF: lambda file: partition_pdf(file=file, strategy="fast"),
        sniff.DOCX: lambda file: partition_docx(file=file),
        sniff.PPTX: lambda file: partition_pptx(file=file),
        sniff.XLSX: lambda file: partition_xlsx(file=file),
        sniff.HTML: lambda file: partition_html(file=file),
    }


def _partition(partitioner: Partitioner, data: bytes, mime: str) -> Sequence[_LibElement]:
    """Run one partitioner, turning any library failure into a message the uploader can act on."""
    try:
        return partitioner(io.BytesIO(data))
    except IngestError:
        raise
    except Exception as exc:  # third-party parsers raise anything; re-raised as a domain error
        raise CorruptDocument(
            f"the {_LABELS[mime]} file could not be read ({type(exc).__name__}); it may be damaged, "
            "re-export it or upload the original"
        ) from exc


def _inspect_pdf(data: bytes) -> _PdfInfo:
    """Check a PDF opens and is not password-protected, and read its page count and title.

    :raises CorruptDocument: pypdf cannot read the structure (invalid or truncated file).
    :raises EncryptedDocument: a user password is required (an empty one is tried first).
    """
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        locked = reader.is_encrypted and not reader.decrypt("")
        info = None if locked else _PdfInfo(len(reader.pages), _meaningful_title(_pdf_title(reader)))
    except Exception as exc:  # pypdf raises many unrelated types on damaged files
        raise CorruptDocument(
            "the PDF is damaged or truncated and cannot be read; re-export it or upload the original"
        ) from exc
    if info is None:
        raise EncryptedDocument(f"the PDF is {sniff.PASSWORD_PROTECTED}")
    return info


def _pdf_title(reader: Any) -> str | None:
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    return title if isinstance(title, str) else None


def _assemble(found: Sequence[_LibElement], mime: str, pdf: _PdfInfo | None, title: str | None) -> ParsedDocument:
    """Join element texts with a blank line, recording where each element lands.

    :raises EmptyDocument: no element carries text.
    """
    paged = mime in _PAGED
    parts: list[str] = []
    elements: list[Element] = []
    offset = 0
    for item in found:
        text = (item.text or "").strip()
        if not text:
            continue
        if parts:
            offset += len(SEPARATOR)
        page = _page_of(item) if paged else None
        elements.append(Element(text, offset, offset + len(text), page, _kind(item.category)))
        parts.append(text)
        offset += len(text)
    if not elements:
        raise EmptyDocument(_empty_message(mime))
    pages = _page_count(found, pdf) if paged else 1
    return ParsedDocument(SEPARATOR.join(parts), elements, pages, mime, _choose_title(mime, pdf, title, elements))


def _page_of(item: _LibElement) -> int | None:
    page = getattr(item.metadata, "page_number", None)
    return page if isinstance(page, int) and page >= 1 else None


def _page_count(found: Sequence[_LibElement], pdf: _PdfInfo | None) -> int:
    """pypdf's count for PDFs; otherwise the last page any element (even a page break) is on."""
    seen = [page for item in found if (page := _page_of(item)) is not None]
    return max([pdf.pages if pdf else 1, *seen])


def _kind(category: str) -> str:
    return _KINDS.get(category, category.lower())


def _choose_title(mime: str, pdf: _PdfInfo | None, html_title: str | None, elements: list[Element]) -> str | None:
    """Metadata titles where the format has them; a first heading only where headings are styled.

    ``unstructured``'s "Title" on PDFs is a guess from short lines, so it is not used there.
    """
    if pdf is not None:
        return pdf.title
    if html_title:
        return html_title
    if mime in (sniff.DOCX, sniff.PPTX, sniff.HTML):
        return next((e.text for e in elements if e.kind == "title"), None)
    return None


def _meaningful_title(title: str | None) -> str | None:
    """Drop metadata titles that are tool defaults or file names rather than a real title."""
    cleaned = " ".join((title or "").split())
    if not cleaned or cleaned.lower() in _PLACEHOLDER_TITLES or _FILE_NAME.fullmatch(cleaned):
        return None
    return cleaned


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
    return _meaningful_title(html.unescape(text))


def _empty_message(mime: str) -> str:
    if mime == sniff.PDF:
        return (
            "no extractable text: the PDF has no text layer (scanned or blank pages) and OCR is not "
            "enabled; upload a PDF with selectable text"
        )
    return f"no extractable text: the {_LABELS[mime]} file holds no text (only images, charts or empty cells)"


def parse_text(text: str, mime: str) -> ParsedDocument:
    """Plain text or Markdown: the text is the file; elements are its paragraphs, located in place.

    :raises EmptyDocument: the file holds only whitespace.
    """
    markdown = mime == sniff.MARKDOWN
    elements = [Element(text[start:end], start, end, None, kind) for start, end, kind in _text_blocks(text, markdown)]
    if not elements:
        raise EmptyDocument("no extractable text: the file contains only whitespace; upload the document with text")
    title = next((_heading_text(e.text) for e in elements if e.kind == "title"), None) if markdown else None
    return ParsedDocument(text, elements, 1, mime, title)


def _text_blocks(text: str, markdown: bool) -> Iterator[tuple[int, int, str]]:
    """Yield ``(start, end, kind)`` per paragraph (lines between blank lines), whitespace trimmed.

    In Markdown a heading line is a block of its own even without blank lines around it, except
    inside fenced code, where ``#`` starts a comment, not a heading.
    """
    start: int | None = None
    end = offset = 0
    fenced = False
    for line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        content = line.strip()
        if markdown and _MD_FENCE.match(line):
            fenced = not fenced
        heading = markdown and not fenced and _MD_HEADING.match(line) is not None
        if start is not None and (not content or heading):
            yield start, end, "text"
            start = None
        if not content:
            continue
        first = line_start + len(line) - len(line.lstrip())
        last = line_start + len(line.rstrip())
        if heading:
            yield first, last, "title"
            continue
        start = first if start is None else start
        end = last
    if start is not None:
        yield start, end, "text"


def _heading_text(line: str) -> str | None:
    return line.strip().strip("#").strip() or None

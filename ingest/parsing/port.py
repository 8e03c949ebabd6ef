"""The parser port: turn an uploaded file's bytes into text with located, paged elements.

Everything downstream (PII detection, chunking, citations) works on character offsets into
``ParsedDocument.text``, so the one promise every adapter must keep is that each element is an
exact slice of that text. Adapters live beside this module (``unstructured_parser.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Element:
    """One structural piece of a document (a paragraph, title, table, list item...).

    ``text == ParsedDocument.text[start:end]`` always holds, so a citation or a redaction
    computed on the element can be mapped back onto the whole document without searching.
    """

    text: str
    start: int
    end: int
    page: int | None  # 1-based: PDF page, PPTX slide, XLSX sheet index; None when the format has no pages
    kind: str  # "title" | "text" | "table" | "list" | ... (unstructured's category, lowercased)
    ocr: bool = False  # read by OCR from a page image, so citations can warn that characters may be misread


@dataclass(frozen=True)
class Attachment:
    """A file carried inside a document (an e-mail attachment), ingested as a child document."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class ParsedDocument:
    """The extracted text of one document and its elements in reading order.

    ``elements`` are non-empty, ordered by ``start`` and non-overlapping. ``pages`` is 1 for
    formats without pages. ``mime`` is detected from the content, never trusted from the name.
    ``title`` comes from the format's own metadata (PDF title, HTML ``<title>``, e-mail subject,
    first heading) and is None when there is none. ``attachments`` are files the document
    carries (e-mail attachments); the caller ingests each as a child document.
    """

    text: str
    elements: list[Element]
    pages: int
    mime: str
    title: str | None
    attachments: tuple[Attachment, ...] = ()

    @property
    def ocr_pages(self) -> int:
        """How many pages were read by OCR (0 for a document with a text layer throughout)."""
        return len({e.page for e in self.elements if e.ocr})


class Parser(Protocol):
    """Extracts text from uploaded bytes; one instance is shared by a worker for many documents.

    ``warm_up`` loads heavy resources (NLP models, partitioners) once, so the first upload is not
    slow; ``parse`` must work without it (it warms up lazily) but may then be slower.

    ``parse`` detects the format from the bytes (the filename only breaks ties that content cannot,
    such as Markdown vs. plain text) and never lets a library exception escape. It raises
    (all from ``ingest.errors``, each message saying what the user should do):

    :raises EmptyDocument: zero bytes, or no extractable text (even after OCR of image-only pages).
    :raises OcrUnavailable: a page needs OCR and this server has no Tesseract installed.
    :raises UnsupportedFormat: a type Enclave does not read (binary garbage, undecodable text).
    :raises CorruptDocument: a damaged file: invalid/truncated PDF, a zip that is not an office
        document, a file named like an office document whose content is not one.
    :raises EncryptedDocument: a password-protected PDF or office file.
    """

    def warm_up(self) -> None:
        """Load heavy resources once, before the first document arrives."""
        ...

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse one document's bytes; ``filename`` is a hint, never the source of truth."""
        ...

    def close(self) -> None:
        """Release what the parser holds between documents (a child process); nothing where it holds nothing."""
        ...

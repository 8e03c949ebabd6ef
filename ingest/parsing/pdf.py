"""PDF specifics: integrity and encryption checks, metadata title, and OCR of image-only pages.

pypdf checks encryption and integrity before ``unstructured`` runs, because ``unstructured``
silently returns nothing for a password-protected or broken PDF instead of failing.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader

from ingest.errors import CorruptDocument, EncryptedDocument
from ingest.parsing import ocr, sniff

_PLACEHOLDER_TITLES = {"untitled", "blank", "powerpoint presentation", "document", "title"}
_FILE_NAME = re.compile(r".+\.(?:pdf|docx?|pptx?|xlsx?|rtf|txt|indd|tiff?|jpe?g|png)$", re.IGNORECASE)
EMPTY_PDF = (
    "no extractable text, even after OCR: the PDF's pages are blank or hold nothing readable; "
    "upload a PDF with selectable text or a clearer scan"
)


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    title: str | None


@dataclass(frozen=True)
class Piece:
    """A block of text on its way to becoming an :class:`~ingest.parsing.port.Element`.

    ``joiner`` is what separates it from the previous piece in the document's text: a blank line
    between blocks, a single newline between the rows of one table.
    """

    text: str
    kind: str
    page: int | None
    ocr: bool = False
    joiner: str = "\n\n"


def inspect_pdf(data: bytes) -> PdfInfo:
    """Check a PDF opens and is not password-protected, and read its page count and title.

    :raises CorruptDocument: pypdf cannot read the structure (invalid or truncated file).
    :raises EncryptedDocument: a user password is required (an empty one is tried first).
    """
    try:
        reader = PdfReader(io.BytesIO(data))
        locked = reader.is_encrypted and not reader.decrypt("")
        info = None if locked else PdfInfo(len(reader.pages), meaningful_title(_pdf_title(reader)))
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


def meaningful_title(title: str | None) -> str | None:
    """Drop metadata titles that are tool defaults or file names rather than a real title."""
    cleaned = " ".join((title or "").split())
    if not cleaned or cleaned.lower() in _PLACEHOLDER_TITLES or _FILE_NAME.fullmatch(cleaned):
        return None
    return cleaned


def with_ocr(data: bytes, pieces: Sequence[Piece], workers: int | None = None) -> list[Piece]:
    """Replace the pieces of image-only pages by what Tesseract reads on them.

    Pages with a text layer keep their extracted text untouched; a page where OCR finds nothing
    keeps whatever (little) text layer it had.

    :raises OcrUnavailable: a page needs OCR and Tesseract is not installed.
    """
    scanned = ocr.textless_pages(data)
    if not scanned:
        return list(pieces)
    read = [page for page in ocr.ocr_pages(data, scanned, workers) if page.paragraphs]
    replaced = {page.page for page in read}
    kept = [piece for piece in pieces if piece.page not in replaced]
    added = [Piece(text, "text", page.page, ocr=True) for page in read for text in page.paragraphs]
    return sorted([*kept, *added], key=lambda piece: piece.page or 0)  # stable: reading order within a page

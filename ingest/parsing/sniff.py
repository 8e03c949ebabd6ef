"""Detect a document's type from its bytes.

The filename an uploader sends is a claim, not a fact: a PDF saved as ``.docx`` is still a PDF,
and a ``.docx`` that is not a zip is damaged. Content decides; the name only breaks the one tie
content cannot (Markdown vs. plain text) and tells a damaged office file from random bytes.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePath

from ingest.errors import CorruptDocument, DecompressionBomb, EmptyDocument, EncryptedDocument, UnsupportedFormat
from ingest.parsing.emails import EML as EML
from ingest.parsing.emails import looks_like_email
from ingest.parsing.tabular import CSV as CSV
from ingest.parsing.tabular import looks_like_csv

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTML = "text/html"
TEXT = "text/plain"
MARKDOWN = "text/markdown"

SUPPORTED = "PDF, DOCX, PPTX, XLSX, HTML, e-mail (.eml), CSV, Markdown or UTF-8 plain text"
PASSWORD_PROTECTED = "password-protected, provide the password or an unencrypted copy"

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Password-protected OOXML files are OLE2 containers holding a stream of this (UTF-16) name.
_OLE2_ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
_OFFICE_PARTS = {"word/document.xml": DOCX, "ppt/presentation.xml": PPTX, "xl/workbook.xml": XLSX}
_CLAIMED_BINARY = {".pdf": "PDF", ".docx": "DOCX", ".pptx": "PPTX", ".xlsx": "XLSX"}
_MARKDOWN_SUFFIXES = {".md", ".markdown"}
_SNIFF_WINDOW = 1024
# Real office documents expand a few times to a few dozen times; a zip bomb by thousands. The
# declared sizes are what zipfile will ever inflate (it stops at them), so checking them suffices.
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
MAX_ZIP_RATIO = 100
_RATIO_CHECK_ABOVE = 16 * 1024 * 1024  # small parts compress extremely well and are harmless
MAX_ZIP_ENTRIES = 10_000


def sniff_mime(data: bytes, filename: str) -> str:
    """Return the MIME type of ``data``, judged by its content.

    :raises EmptyDocument: ``data`` is empty.
    :raises EncryptedDocument: a password-protected office file.
    :raises CorruptDocument: a broken zip, a zip without office parts, or a file whose name claims
        a binary format its content does not have.
    :raises UnsupportedFormat: anything else that is not text.
    """
    if not data:
        raise EmptyDocument("the file is empty (0 bytes); upload the document again")
    head = data[:_SNIFF_WINDOW]
    if _looks_like_pdf(data):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _sniff_zip(data, filename)
    if data.startswith(_OLE2_MAGIC):
        return _reject_ole2(data)
    if _looks_like_html(head):
        return HTML
    if looks_like_email(data):
        return EML  # before UTF-8 decoding: a message declares its own charsets
    _reject_claimed_binary(filename)
    text = decode_text(data)
    if _suffix(filename) in _MARKDOWN_SUFFIXES:
        return MARKDOWN
    return CSV if looks_like_csv(text, filename) else TEXT


def decode_text(data: bytes) -> str:
    """Decode text exactly as stored: UTF-8 with only a leading BOM removed.

    Offsets cited to users (and used by evaluation) are ``str`` offsets into the file, so no
    newline translation, normalisation or lossy replacement may happen here.

    :raises UnsupportedFormat: not UTF-8, or binary content (NUL bytes) that happens to decode.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedFormat(
            f"the file is neither UTF-8 text nor a known document type; upload {SUPPORTED} "
            "(re-save text files as UTF-8)"
        ) from exc
    if "\x00" in text:
        raise UnsupportedFormat(f"binary file of an unknown type; upload {SUPPORTED}")
    return text


def _sniff_zip(data: bytes, filename: str) -> str:
    """Tell DOCX, PPTX and XLSX apart by the part each one must contain."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CorruptDocument(
            "the file is a damaged or truncated zip/office archive; re-export or re-upload it"
        ) from exc
    _reject_bomb(entries, len(data))
    names = {entry.filename for entry in entries}
    for part, mime in _OFFICE_PARTS.items():
        if part in names:
            return mime
    if _suffix(filename) in _CLAIMED_BINARY:
        raise CorruptDocument(
            f"the file is named {_suffix(filename)} but its zip holds no office document; "
            "re-export it from the office application"
        )
    raise UnsupportedFormat(f"zip archives are not supported; upload the documents inside it ({SUPPORTED})")


def _reject_bomb(entries: list[zipfile.ZipInfo], size: int) -> None:
    """Refuse archives that would inflate to far more than any real office document.

    :raises DecompressionBomb: too many parts, too many bytes, or an implausible ratio.
    """
    unzipped = sum(entry.file_size for entry in entries)
    ratio = unzipped / max(size, 1)
    too_big = unzipped > MAX_UNZIPPED_BYTES or len(entries) > MAX_ZIP_ENTRIES
    if too_big or (unzipped > _RATIO_CHECK_ABOVE and ratio > MAX_ZIP_RATIO):
        raise DecompressionBomb(
            f"the archive would expand from {size:,} to {unzipped:,} bytes ({ratio:,.0f}:1, {len(entries):,} parts), "
            f"beyond the safety limits ({MAX_UNZIPPED_BYTES:,} bytes, {MAX_ZIP_RATIO}:1); it looks like a "
            "decompression bomb and was not opened. Re-save the document from its application and upload that copy"
        )


def _reject_ole2(data: bytes) -> str:
    """OLE2 is either an encrypted OOXML file or a legacy binary format; neither is readable."""
    if _OLE2_ENCRYPTED_STREAM in data:
        raise EncryptedDocument(f"the office document is {PASSWORD_PROTECTED}")
    raise UnsupportedFormat(
        "legacy Office formats (.doc, .xls, .ppt) are not supported; save it as .docx, .xlsx or .pptx"
    )


def _looks_like_pdf(data: bytes) -> bool:
    """Readers accept junk before the ``%PDF-`` header (within 1 KB); a text file that merely
    mentions ``%PDF-`` near its start is told apart by lacking the ``%%EOF`` trailer."""
    if data.startswith(b"%PDF-"):
        return True
    return b"%PDF-" in data[:_SNIFF_WINDOW] and b"%%EOF" in data[-_SNIFF_WINDOW:]


def _looks_like_html(head: bytes) -> bool:
    """HTML has no magic number; these markers at the start are what browsers sniff too."""
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return True
    # an XML declaration or a comment may come first; prose that merely mentions <html> may not
    return lowered.startswith(b"<") and b"<html" in lowered


def _reject_claimed_binary(filename: str) -> None:
    """A file named like a binary format but matching no signature was damaged on the way."""
    suffix = _suffix(filename)
    if suffix in _CLAIMED_BINARY:
        raise CorruptDocument(
            f"the file is named {suffix} but is not a valid {_CLAIMED_BINARY[suffix]} file "
            "(truncated or damaged); re-export it or upload the original"
        )


def _suffix(filename: str) -> str:
    return PurePath(filename).suffix.lower()

"""OCR for PDF pages without a text layer: pypdfium2 renders the page, Tesseract reads it.

Decided per page, so a mixed PDF keeps the exact text of its born-digital pages and only its
scanned pages are read from pixels. Tesseract runs as a subprocess per page with OpenMP limited
to one thread: on a small machine its own threading is several times slower than one thread per
page, and pages are spread over the cores instead. ``--psm 1`` lets Tesseract detect the page's
orientation, so upside-down and sideways scans are read too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pypdfium2 as pdfium

from ingest.errors import CorruptDocument, OcrUnavailable

# A scanned page often carries a stray text layer (a Bates stamp, a fax header); below this many
# non-blank characters the page is treated as having no text layer.
MIN_TEXT_CHARS = 16
DPI = 300
MAX_SIDE_PX = 4000  # a poster-sized page is scaled down rather than rendered at 300 dpi
PAGE_TIMEOUT_S = 180.0
LANGUAGE = "eng"
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n")


@dataclass(frozen=True)
class OcrPage:
    """The paragraphs Tesseract read on one page (1-based), in reading order."""

    page: int
    paragraphs: list[str]


def tesseract_path() -> str | None:
    """The Tesseract binary, or None when it is not installed."""
    return shutil.which("tesseract")


def textless_pages(data: bytes) -> list[int]:
    """1-based numbers of the pages whose text layer holds fewer than ``MIN_TEXT_CHARS`` characters.

    :raises CorruptDocument: pdfium cannot open the file.
    """
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise CorruptDocument("the PDF is damaged and cannot be rendered; re-export it or upload the original") from exc
    try:
        return [number for number, page in enumerate(document, start=1) if _visible_chars(page) < MIN_TEXT_CHARS]
    finally:
        document.close()


def _visible_chars(page: object) -> int:
    textpage = page.get_textpage()  # type: ignore[attr-defined]
    try:
        return len("".join(str(textpage.get_text_range()).split()))
    finally:
        textpage.close()


def ocr_pages(data: bytes, pages: Sequence[int], workers: int | None = None) -> list[OcrPage]:
    """Render and read ``pages`` of the PDF ``data``; one Tesseract process per page, ``workers`` at a time.

    :raises OcrUnavailable: Tesseract is not installed.
    :raises CorruptDocument: a page cannot be rendered, or Tesseract fails or times out on it.
    """
    if not pages:
        return []
    binary = tesseract_path()
    if binary is None:
        raise OcrUnavailable(
            "this PDF has pages without a text layer (scanned) and OCR is not installed on the server; "
            "ask the operator to install tesseract-ocr (scripts/install.sh), or upload a PDF with selectable text"
        )
    workers = workers or max(1, os.cpu_count() or 1)
    texts: list[str] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enclave-ocr") as pool:
        pending: deque[Future[str]] = deque()
        for image in _rendered(data, pages):  # at most 2 images per worker in memory at once
            pending.append(pool.submit(_read, binary, image))
            if len(pending) >= 2 * workers:
                texts.append(pending.popleft().result())
        texts.extend(future.result() for future in pending)
    return [OcrPage(page, _paragraphs(text)) for page, text in zip(pages, texts, strict=True)]


def _rendered(data: bytes, pages: Sequence[int]) -> Iterator[bytes]:
    """Each page as a greyscale PGM image (pdfium is not thread-safe: rendering stays on one thread)."""
    document = pdfium.PdfDocument(data)
    try:
        for number in pages:
            page = document[number - 1]
            width, height = page.get_size()
            scale = min(DPI / 72, MAX_SIDE_PX / max(width, height, 1))
            bitmap = page.render(scale=scale, grayscale=True)
            yield _pgm(bitmap.to_pil())
    except pdfium.PdfiumError as exc:
        raise CorruptDocument(
            "a PDF page could not be rendered for OCR; re-export the PDF or upload the original"
        ) from exc
    finally:
        document.close()


def _pgm(image: object) -> bytes:
    """Binary PGM: no compression to pay for, and Tesseract (Leptonica) reads it from stdin."""
    grey = image.convert("L")  # type: ignore[attr-defined]
    width, height = grey.size
    pixels: bytes = grey.tobytes()
    return f"P5\n{width} {height}\n255\n".encode("ascii") + pixels


def _read(binary: str, image: bytes) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = [binary, "stdin", "stdout", "-l", LANGUAGE, "--psm", "1"]
    try:
        done = subprocess.run(command, input=image, capture_output=True, env=env, timeout=PAGE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CorruptDocument(
            f"OCR of a scanned page took longer than {PAGE_TIMEOUT_S:.0f} s; split the PDF or upload a text PDF"
        ) from exc
    if done.returncode != 0:
        raise CorruptDocument("OCR failed on a scanned page (the image may be damaged); re-scan or re-export the PDF")
    return done.stdout.decode("utf-8", errors="replace")


def _paragraphs(text: str) -> list[str]:
    """Tesseract separates paragraphs with a blank line and ends a page with a form feed."""
    return [block.strip() for block in _PARAGRAPH_BREAK.split(text.replace("\f", "\n")) if block.strip()]

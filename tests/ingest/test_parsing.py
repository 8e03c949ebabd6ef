"""The parser port's contract, checked on real documents through the unstructured adapter.

What a user would notice if these broke: citations pointing at the wrong characters or page,
a document silently indexed as empty, or an error that does not say what to do.
"""

from __future__ import annotations

import io
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pypdf import PdfReader

from ingest.errors import CorruptDocument, EmptyDocument, EncryptedDocument, IngestError, UnsupportedFormat
from ingest.parsing import sniff
from ingest.parsing.port import ParsedDocument
from ingest.parsing.unstructured_parser import UnstructuredParser
from tests.conftest import CUAD, DOCS

CUAD_TXT = CUAD / "contracts"
CUAD_PDF = CUAD / "pdf"
CERENCE = "CerenceInc_20191002_8-K_EX-10.4_11827494_EX-10.4_Intellectual Property Agreement"

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="test documents not present")


@pytest.fixture(scope="module")
def parser() -> UnstructuredParser:
    warmed = UnstructuredParser()
    warmed.warm_up()
    return warmed


def parse_file(parser: UnstructuredParser, path: Path, filename: str | None = None) -> ParsedDocument:
    doc = parser.parse(path.read_bytes(), filename or path.name)
    assert_contract(doc)
    return doc


def assert_contract(doc: ParsedDocument) -> None:
    """Every element is a non-empty exact slice, in order, without overlap, on a real page."""
    assert doc.elements, "a parsed document has at least one element"
    assert doc.pages >= 1
    previous_end = 0
    for element in doc.elements:
        assert element.text, "no empty elements"
        assert doc.text[element.start : element.end] == element.text
        assert element.start >= previous_end, "elements are ordered and do not overlap"
        assert element.page is None or 1 <= element.page <= doc.pages
        assert element.kind and element.kind == element.kind.lower()
        previous_end = element.end


def squeeze(text: str) -> str:
    """pdfminer and pypdf place spaces and line breaks differently; compare without them."""
    return re.sub(r"\s+", "", text)


def uncovered_text(doc: ParsedDocument) -> str:
    """The characters of ``doc.text`` that no element covers."""
    gaps, position = [], 0
    for element in doc.elements:
        gaps.append(doc.text[position : element.start])
        position = element.end
    gaps.append(doc.text[position:])
    return "".join(gaps)


# -- plain text and Markdown: the text is the file, byte for byte --------------------------------


def test_cuad_contract_text_is_the_file_itself(parser: UnstructuredParser) -> None:
    path = CUAD_TXT / "ScansourceInc_20190509_10-Q_EX-10.2_11661422_EX-10.2_Distributor Agreement.txt"
    doc = parse_file(parser, path)
    assert doc.text == path.read_text(encoding="utf-8")
    assert any(ord(char) > 127 for char in doc.text), "offsets must be str offsets, not byte offsets"
    assert (doc.mime, doc.pages, doc.title) == ("text/plain", 1, None)
    assert all(e.page is None and e.kind == "text" for e in doc.elements)
    assert uncovered_text(doc).strip() == "", "every non-blank character belongs to a paragraph"
    assert len(doc.elements) > 20, "paragraphs are split on blank lines"


def test_every_cuad_contract_round_trips(parser: UnstructuredParser) -> None:
    paths = sorted(CUAD_TXT.glob("*.txt"))
    assert len(paths) > 100
    for path in paths:
        doc = parse_file(parser, path)
        assert doc.text == path.read_text(encoding="utf-8"), path.name
        assert uncovered_text(doc).strip() == "", path.name


def test_text_keeps_crlf_and_strips_only_a_leading_bom(parser: UnstructuredParser) -> None:
    raw = "\ufeffFirst line\r\nsame paragraph\r\n\r\n  Second \ufeff paragraph\r\n"
    doc = parser.parse(raw.encode("utf-8"), "notes.txt")
    assert_contract(doc)
    assert doc.text == raw[1:]
    assert [e.text for e in doc.elements] == ["First line\r\nsame paragraph", "Second \ufeff paragraph"]


def test_markdown_headings_are_titles_but_not_inside_code(parser: UnstructuredParser) -> None:
    raw = "# Retention policy\nKeep records seven years.\n\n```sh\n# not a heading\n```\n## Scope\n"
    doc = parser.parse(raw.encode("utf-8"), "policy.md")
    assert_contract(doc)
    assert (doc.text, doc.mime, doc.title) == (raw, "text/markdown", "Retention policy")
    kinds = [(e.kind, e.text) for e in doc.elements]
    assert kinds == [
        ("title", "# Retention policy"),
        ("text", "Keep records seven years."),
        ("text", "```sh\n# not a heading\n```"),
        ("title", "## Scope"),
    ]


def test_the_same_text_named_txt_is_plain_text(parser: UnstructuredParser) -> None:
    doc = parser.parse(b"# Not markdown here\n", "notes.txt")
    assert doc.mime == "text/plain" and doc.title is None and doc.elements[0].kind == "text"


# -- PDFs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (DOCS / "pdf" / "crazyones.pdf", "The Crazy Ones"),
        (DOCS / "pdf" / "multilang.pdf", "Russian: Привет, мир"),
        (DOCS / "pdf" / "pdflatex-outline.pdf", "Hello, here is some text without a meaning."),
        (CUAD_PDF / f"{CERENCE}.pdf", "INTELLECTUAL PROPERTY AGREEMENT"),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else None,
)
def test_born_digital_pdf_yields_text_and_pages(parser: UnstructuredParser, path: Path, expected: str) -> None:
    doc = parse_file(parser, path)
    assert doc.mime == "application/pdf"
    assert expected in doc.text
    assert doc.pages == len(PdfReader(path).pages)
    assert all(e.page is not None for e in doc.elements), "every PDF element knows its page"


@pytest.mark.parametrize("path", [DOCS / "pdf" / "pdflatex-outline.pdf", CUAD_PDF / f"{CERENCE}.pdf"], ids=str)
def test_pdf_page_numbers_match_pypdf(parser: UnstructuredParser, path: Path) -> None:
    doc = parse_file(parser, path)
    page_texts = [squeeze(page.extract_text()) for page in PdfReader(path).pages]
    checked_after_first = 0
    for element in doc.elements:
        probe = squeeze(element.text)[:25]
        if len(probe) < 25 or not any(probe in text for text in page_texts):
            continue  # too short to be unique, or the two extractors disagree on the characters
        assert element.page is not None and probe in page_texts[element.page - 1], element.text[:60]
        checked_after_first += element.page > 1
    assert checked_after_first >= 5, "a multi-page PDF has elements beyond page 1"


@pytest.mark.parametrize("path", [DOCS / "pdf" / "multilang.pdf", CUAD_PDF / f"{CERENCE}.pdf"], ids=str)
def test_pdfs_skip_language_detection_and_parse_as_unstructured_does_by_default(
    parser: UnstructuredParser, path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser names English (the text-type rules unstructured applies to a PDF whatever its language), so
    langdetect never reads the document, and the elements (text, category, page) are those of the default call."""
    from unstructured.partition import pdf as unstructured_pdf
    from unstructured.partition.common import lang

    expected = [
        (e.text, e.category, e.metadata.page_number)
        for e in unstructured_pdf.partition_pdf(file=io.BytesIO(path.read_bytes()), strategy="fast")
    ]

    def no_detection(*args: object, **kwargs: object) -> None:
        raise AssertionError("langdetect ran on a PDF")

    monkeypatch.setattr(lang, "detect_langs", no_detection)
    found = parser._ready_partitioners()[sniff.PDF](io.BytesIO(path.read_bytes()))
    assert [(e.text, e.category, e.metadata.page_number) for e in found] == expected
    assert parse_file(parser, path).elements


def test_pdf_title_comes_from_metadata(parser: UnstructuredParser) -> None:
    assert parse_file(parser, DOCS / "pdf" / "example.pdf").title == "PDF Example Document"


def test_pdf_named_docx_is_still_parsed_as_pdf(parser: UnstructuredParser) -> None:
    path = DOCS / "pdf" / "crazyones.pdf"
    renamed = parse_file(parser, path, filename="crazyones.docx")
    assert renamed.mime == "application/pdf"
    assert renamed.text == parser.parse(path.read_bytes(), path.name).text


# -- office and HTML ---------------------------------------------------------------------------


def test_docx_tables_are_table_elements(parser: UnstructuredParser) -> None:
    doc = parse_file(parser, DOCS / "office" / "tbl-cell-access.docx")
    assert doc.mime == sniff.DOCX
    assert [e.kind for e in doc.elements] == ["table"] * 12, "four 3-row tables, one element per row"
    assert doc.elements[0].text == "1 | 2 | 3"
    assert doc.pages == 1 and all(e.page is None for e in doc.elements), "DOCX has no stable pages"


def test_docx_with_only_empty_tables_is_empty(parser: UnstructuredParser) -> None:
    # tbl-having-tables.docx holds three tables whose every cell is empty: nothing to index.
    with pytest.raises(EmptyDocument, match="no extractable text"):
        parser.parse((DOCS / "office" / "tbl-having-tables.docx").read_bytes(), "tables.docx")


def test_html_text_and_title(parser: UnstructuredParser) -> None:
    doc = parse_file(parser, DOCS / "html" / "apache.html")
    assert (doc.mime, doc.title, doc.pages) == ("text/html", "Apache Status", 1)
    assert "Server Version: Apache/2.4.7 (Ubuntu) PHP/5.5.9-1ubuntu4.22" in [e.text for e in doc.elements]
    assert "<td" not in doc.text, "markup is not text"


def test_pptx_elements_carry_their_slide_number(parser: UnstructuredParser) -> None:
    doc = parse_file(parser, DOCS / "office" / "dml-fill.pptx")
    assert (doc.mime, doc.pages) == (sniff.PPTX, 2)
    pages = {e.text: e.page for e in doc.elements}
    assert pages["autoshape with solid RGB fill"] == 1
    assert pages["autoshape with Divot pattern fill"] == 2


def test_xlsx_cells_are_on_their_sheet(parser: UnstructuredParser) -> None:
    doc = parse_file(parser, DOCS / "office" / "shp-embedded-xlsx.xlsx")
    assert (doc.mime, doc.pages) == (sniff.XLSX, 1)
    assert [(e.text, e.page) for e in doc.elements] == [("1", 1), ("2", 1), ("3", 1)]


# -- documents that cannot be ingested ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("crazyones-encrypted-256.pdf", EncryptedDocument),
        ("libreoffice-writer-password.pdf", EncryptedDocument),
        ("invalid.pdf", CorruptDocument),  # %PDF header, no structure
        ("truncated.docx", CorruptDocument),  # b"not a pdf\0\1": not a zip, but named .docx
        ("blank.pdf", EmptyDocument),  # one page, no text layer
    ],
)
def test_bad_documents_raise_specific_errors(parser: UnstructuredParser, name: str, error: type[IngestError]) -> None:
    with pytest.raises(error) as raised:
        parser.parse((DOCS / "bad" / name).read_bytes(), name)
    assert type(raised.value) is error
    assert re.search(r"upload|provide|re-export", raised.value.message), "the message says what to do"


def test_encrypted_pdf_message(parser: UnstructuredParser) -> None:
    with pytest.raises(EncryptedDocument, match="password-protected, provide the password or an unencrypted copy"):
        parser.parse((DOCS / "bad" / "crazyones-encrypted-256.pdf").read_bytes(), "secret.pdf")


def test_scanned_pdf_without_ocr_installed_says_what_to_do(
    parser: UnstructuredParser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.errors import OcrUnavailable
    from ingest.parsing import ocr

    monkeypatch.setattr(ocr, "tesseract_path", lambda: None)  # a server where tesseract-ocr is missing
    with pytest.raises(OcrUnavailable, match="install tesseract-ocr"):
        parser.parse((DOCS / "scanned" / "linn.pdf").read_bytes(), "linn.pdf")


def test_zero_bytes_is_empty(parser: UnstructuredParser) -> None:
    with pytest.raises(EmptyDocument):
        parser.parse(b"", "empty.txt")


def test_whitespace_only_text_is_empty(parser: UnstructuredParser) -> None:
    with pytest.raises(EmptyDocument):
        parser.parse(b" \n\r\n\t\n", "blank.txt")


@pytest.mark.parametrize("filename", ["blob.bin", "blob.txt", "blob"])
def test_random_bytes_are_unsupported(parser: UnstructuredParser, filename: str) -> None:
    with pytest.raises(UnsupportedFormat):
        parser.parse(random.Random(7).randbytes(4096), filename)


def test_non_utf8_text_is_unsupported(parser: UnstructuredParser) -> None:
    # Latin-1 text without a declared charset ("£" as byte 0xa3): guessing could garble it silently
    with pytest.raises(UnsupportedFormat, match="UTF-8"):
        parser.parse("Fee: \xa3160,000 for the caf\xe9\n".encode("latin-1"), "fees.txt")


def test_zip_without_office_parts(parser: UnstructuredParser) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(UnsupportedFormat, match="zip"):
        parser.parse(buffer.getvalue(), "bundle.zip")
    with pytest.raises(CorruptDocument, match=r"\.docx"):
        parser.parse(buffer.getvalue(), "contract.docx")


def test_truncated_office_zip_is_corrupt(parser: UnstructuredParser) -> None:
    data = (DOCS / "office" / "tbl-cell-access.docx").read_bytes()
    with pytest.raises(CorruptDocument):
        parser.parse(data[: len(data) // 2], "contract.docx")


def test_importing_the_adapter_does_not_import_unstructured() -> None:
    code = "import sys, ingest.parsing.unstructured_parser; sys.exit('unstructured' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(("user_password", "error"), [("", None), ("secret", EncryptedDocument)])
def test_pdf_encryption_only_blocks_when_a_password_is_needed(
    parser: UnstructuredParser, user_password: str, error: type[IngestError] | None
) -> None:
    # An owner password alone (printing/copying restrictions) still lets anyone open the file.
    pikepdf = pytest.importorskip("pikepdf")
    buffer = io.BytesIO()
    with pikepdf.open(DOCS / "pdf" / "crazyones.pdf") as pdf:
        pdf.save(buffer, encryption=pikepdf.Encryption(owner="owner-secret", user=user_password))
    if error is None:
        assert "The Crazy Ones" in parser.parse(buffer.getvalue(), "restricted.pdf").text
    else:
        with pytest.raises(error):
            parser.parse(buffer.getvalue(), "locked.pdf")


def test_pdf_header_after_leading_junk_is_still_a_pdf(parser: UnstructuredParser) -> None:
    data = b"\r\n" + (DOCS / "pdf" / "crazyones.pdf").read_bytes()
    assert parser.parse(data, "upload").mime == "application/pdf"
    assert parser.parse(b"Notes: files start with %PDF-1.7 and end with a trailer.\n", "n.txt").mime == "text/plain"

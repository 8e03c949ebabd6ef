"""Every real document in ../shared/data/docs, OCR of scans, e-mail, CSV and decompression bombs.

What a user would notice if these broke: a scanned fax indexed as empty or cited on the wrong
page, an e-mail's attachment silently dropped, a Latin-1 message garbled, a spreadsheet row cut in
half, or a malicious upload exhausting the server's memory.
"""

from __future__ import annotations

import io
import re
import zipfile
from email.message import EmailMessage
from functools import cache
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from ingest.chunking import TokenChunker
from ingest.errors import CorruptDocument, DecompressionBomb, EmptyDocument, EncryptedDocument, IngestError
from ingest.parsing import sniff
from ingest.parsing.port import ParsedDocument
from ingest.parsing.unstructured_parser import UnstructuredParser
from tests.conftest import DOCS
from tests.ingest.test_parsing import assert_contract, squeeze

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="test documents not present")

EML, CSV, PDF = "message/rfc822", "text/csv", "application/pdf"
_ACTION = "upload|provide|re-export|re-save"
# Every file in docs/ and what it must give: (mime, a phrase of its text) or (error, message pattern).
EXPECTED: dict[str, tuple[str | type[IngestError], str]] = {
    "bad/blank.pdf": (EmptyDocument, "no extractable text, even after OCR"),
    "bad/crazyones-encrypted-256.pdf": (
        EncryptedDocument,
        "password-protected, provide the password or an unencrypted copy",
    ),
    "bad/invalid.pdf": (CorruptDocument, "damaged or truncated"),
    "bad/libreoffice-writer-password.pdf": (EncryptedDocument, "password-protected, provide the password"),
    "bad/truncated.docx": (CorruptDocument, "named .docx but is not a valid DOCX"),
    "email/00001.eml": (EML, "Resolutions You Can Keep"),
    "email/00002.eml": (EML, "Fourth Prize consists of 1 manufacturer's coupon"),
    "email/00003.eml": (EML, "renewal reminder"),
    "email/00004.eml": (EML, "CAUCE NEWS"),
    "email/00005.eml": (EML, "Nothing like mama used to make"),
    "email/00006.eml": (EML, "Nothing like mama used to make"),
    "email/00007.eml": (EML, "(£160,000)"),  # ISO-8859-1, 8bit: decoded by its declared charset
    "email/00008.eml": (EML, "Nothing like mama used to make"),
    "email/LICENSE-spamassassin-corpus.txt": ("text/plain", "Apache-2.0"),
    "html/apache.html": ("text/html", "Server Version: Apache/2.4.7"),
    "html/mozilla.org.firefox.developer.html": ("text/html", "Firefox Developer Edition"),
    "html/utf8.html": ("text/html", "Unicode Demo"),
    "office/cht-chart-type.pptx": (EmptyDocument, "only images, charts"),
    "office/dml-fill.pptx": (sniff.PPTX, "autoshape with solid RGB fill"),
    "office/having-images.docx": (EmptyDocument, "only images, charts"),
    "office/shp-embedded-xlsx.xlsx": (sniff.XLSX, "3"),
    "office/tbl-cell-access.docx": (sniff.DOCX, "1 | 2 | 3\n4 | 5 | 6\n7 | 8 | 9"),
    "office/tbl-having-tables.docx": (EmptyDocument, "empty cells"),
    "pdf/GeoBase_NHNC1_Data_Model_UML_EN.pdf": (PDF, "National Hydro Network"),
    "pdf/SF424_page2.pdf": (PDF, "Application for Federal Assistance"),
    "pdf/attachment.pdf": (PDF, "The Crazy Ones"),
    "pdf/crazyones.pdf": (PDF, "The Crazy Ones"),
    "pdf/example.pdf": (PDF, "Beautiful is better than ugly"),
    "pdf/multilang.pdf": (PDF, "Russian: Привет, мир"),
    "pdf/pdflatex-outline.pdf": (PDF, "Hello, here is some text without a meaning."),
    "scanned/Seige_of_Vicksburg_Sample_OCR.pdf": (PDF, "THE SIEGE OF VICKSBURG"),  # already has a text layer
    "scanned/c03-29.pdf": (PDF, "going-over in the morning"),
    "scanned/cardinal.pdf": (PDF, "LinnSequencer"),
    "scanned/linn.pdf": (PDF, "32 Track MIDI Sequence Recorder"),
    "scanned/multipage.pdf": (PDF, "throne of England"),
}
ALL_FILES = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*") if p.is_file()) if DOCS.is_dir() else []


@cache
def _outcome(parser: UnstructuredParser, name: str) -> ParsedDocument | IngestError:
    """Parse each file once per session (OCR is the slow part), whichever tests ask."""
    try:
        return parser.parse((DOCS / name).read_bytes(), Path(name).name)
    except IngestError as exc:
        return exc


def _parsed(parser: UnstructuredParser, name: str) -> ParsedDocument:
    outcome = _outcome(parser, name)
    assert isinstance(outcome, ParsedDocument), f"{name}: {outcome}"
    return outcome


def _page_texts(path: Path) -> list[str]:
    document = pdfium.PdfDocument(path)
    try:
        return [squeeze(page.get_textpage().get_text_range()) for page in document]
    finally:
        document.close()


def test_every_file_has_an_expectation() -> None:
    assert ALL_FILES and set(ALL_FILES) == set(EXPECTED), "a new test document needs an entry in EXPECTED"


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_document_yields_paged_text_or_a_specific_actionable_reason(
    parser: UnstructuredParser, name: str
) -> None:
    expected, phrase = EXPECTED[name]
    outcome = _outcome(parser, name)
    if isinstance(expected, type):
        assert type(outcome) is expected, f"{name}: {outcome!r}"
        assert re.search(re.escape(phrase), outcome.message) and re.search(_ACTION, outcome.message), outcome.message
        return
    assert isinstance(outcome, ParsedDocument), f"{name} was rejected: {outcome}"
    assert_contract(outcome)
    assert outcome.mime == expected and phrase in outcome.text
    if outcome.mime == PDF:
        _assert_pdf_pages(DOCS / name, outcome)
    elif outcome.mime not in (sniff.PPTX, sniff.XLSX):
        assert outcome.pages == 1 and all(e.page is None for e in outcome.elements)


def _assert_pdf_pages(path: Path, doc: ParsedDocument) -> None:
    """The page count is the file's; every text-layer element is found on the page it claims."""
    pages = _page_texts(path)
    assert doc.pages == len(pages) and all(e.page is not None for e in doc.elements)
    for element in doc.elements:
        probe = squeeze(element.text)[:25]
        if element.ocr or len(probe) < 25 or not any(probe in text for text in pages):
            continue  # OCR'd (no text layer to compare with), too short, or the extractors disagree
        assert probe in pages[element.page - 1], f"{path.name}: {element.text[:60]!r} is not on page {element.page}"


# -- OCR ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pages", "scanned"),
    [
        ("scanned/c03-29.pdf", {1: "going-over in the morning"}, 1),
        ("scanned/linn.pdf", {1: "state-of-the-art composition"}, 1),
        # pages 2 and 4 are sideways, page 3 upside down: Tesseract finds the orientation
        ("scanned/cardinal.pdf", {1: "LinnSequencer", 2: "LinnSequencer", 3: "LinnSequencer", 4: "LinnSequencer"}, 4),
        # page 3 is a chart (OCR'd, nothing reliable to assert), page 4 has a text layer
        (
            "scanned/multipage.pdf",
            {1: "going-over in the morning", 2: "pixels", 5: "throne of England", 6: "throne of England"},
            5,
        ),
    ],
)
def test_scanned_pages_are_read_by_ocr_on_the_right_page(
    parser: UnstructuredParser, name: str, pages: dict[int, str], scanned: int
) -> None:
    doc = _parsed(parser, name)
    for page, phrase in pages.items():
        on_page = " ".join(e.text for e in doc.elements if e.page == page)
        assert phrase in on_page, f"page {page}: {on_page[:200]!r}"
        assert all(e.ocr for e in doc.elements if e.page == page), "every element of a scanned page is marked OCR"
    assert doc.ocr_pages == scanned


def test_a_mixed_pdf_keeps_its_text_layer_page_and_ocrs_the_rest(parser: UnstructuredParser) -> None:
    doc = _parsed(parser, "scanned/multipage.pdf")
    page_four = [e for e in doc.elements if e.page == 4]
    assert page_four and not any(e.ocr for e in page_four), "page 4 has a text layer: extracted, not OCR'd"
    assert "Percentage [note 3]" in [e.text for e in page_four]
    assert [e.page for e in doc.elements] == sorted(e.page or 0 for e in doc.elements), "reading order is page order"


def test_born_digital_pdfs_are_never_ocrd(parser: UnstructuredParser) -> None:
    for name in ("pdf/pdflatex-outline.pdf", "scanned/Seige_of_Vicksburg_Sample_OCR.pdf"):
        assert _parsed(parser, name).ocr_pages == 0, name


# -- e-mail -------------------------------------------------------------------------------------


def _message_with_attachments() -> bytes:
    message = EmailMessage()
    message["From"] = "Dr. Zoë Hart <zoe@clinic.example>"
    message["To"] = "records@clinic.example"
    message["Subject"] = "Discharge summary for ward 7"
    message.set_content(
        "Patient discharged on Friday.\n\nFollow-up in two weeks: café on level 2.", charset="iso-8859-1"
    )
    message.add_attachment(
        (DOCS / "pdf" / "crazyones.pdf").read_bytes(), maintype="application", subtype="pdf", filename="crazyones.pdf"
    )
    message.add_attachment(b"ward,bed\n7,12\n7,14\n", maintype="text", subtype="csv", filename="beds.csv")
    return message.as_bytes()


def test_email_headers_body_and_attachments(parser: UnstructuredParser) -> None:
    data = _message_with_attachments()
    doc = parser.parse(data, "upload.bin")  # no .eml name: recognised by its headers
    assert_contract(doc)
    assert (doc.mime, doc.title, doc.pages) == (EML, "Discharge summary for ward 7", 1)
    assert doc.elements[0].text == "Subject: Discharge summary for ward 7" and doc.elements[0].kind == "title"
    assert "Dr. Zoë Hart" in doc.text and "<zoe@clinic.example>" in doc.text, "an RFC 2047 encoded name is decoded"
    assert "café on level 2" in doc.text, "the ISO-8859-1 body is decoded by its declared charset"
    assert "Attachments: crazyones.pdf, beds.csv" in doc.text
    assert [(a.filename, a.data[:5]) for a in doc.attachments] == [("crazyones.pdf", b"%PDF-"), ("beds.csv", b"ward,")]
    assert b"%PDF" not in doc.text.encode(), "attachments are not inlined into the message's text"


def test_html_only_email_body_is_converted_to_text(parser: UnstructuredParser) -> None:
    message = EmailMessage()
    message["From"], message["Subject"] = "a@example.com", "Newsletter"
    message.set_content("<html><body><h1>Quarterly update</h1><p>Revenue grew 4%.</p></body></html>", subtype="html")
    doc = parser.parse(message.as_bytes(), "n.eml")
    assert_contract(doc)
    assert "Revenue grew 4%." in [e.text for e in doc.elements] and "<p>" not in doc.text


def test_text_that_merely_starts_with_a_colon_line_is_not_email(parser: UnstructuredParser) -> None:
    assert parser.parse(b"Note: this is a memo\nplain words follow\n", "memo.txt").mime == "text/plain"


def test_non_utf8_plain_text_is_still_refused_with_a_fix(parser: UnstructuredParser) -> None:
    from ingest.errors import UnsupportedFormat

    with pytest.raises(UnsupportedFormat, match="re-save text files as UTF-8"):
        parser.parse("Prix: 12 £ la pièce, caf\xe9 compris\n".encode("latin-1"), "prix.txt")


# -- CSV ----------------------------------------------------------------------------------------

_CSV = 'id,name,notes\r\n1,Alice,"first line\r\nsecond line"\r\n\r\n2,Bob,plain\r\n3,"Carol, Jr.",x\r\n'


def test_csv_is_the_file_with_one_element_per_row(parser: UnstructuredParser) -> None:
    doc = parser.parse(_CSV.encode(), "people.csv")
    assert_contract(doc)
    assert (doc.mime, doc.text, doc.pages) == (CSV, _CSV, 1)
    assert [e.text for e in doc.elements] == [
        "id,name,notes",
        '1,Alice,"first line\r\nsecond line"',
        "2,Bob,plain",
        '3,"Carol, Jr.",x',
    ]
    assert all(e.kind == "table" for e in doc.elements)


def test_csv_is_recognised_by_content_not_name(parser: UnstructuredParser) -> None:
    rows = "date;amount;currency\n2024-01-02;12,50;EUR\n2024-01-03;7,00;EUR\n2024-01-04;3,10;EUR\n"
    assert parser.parse(rows.encode(), "export").mime == CSV
    assert parser.parse(rows.encode(), "export.md").mime == "text/markdown", "a Markdown name breaks the tie"


def test_chunks_never_split_a_csv_row(parser: UnstructuredParser, embedder) -> None:  # type: ignore[no-untyped-def]
    rows = ["patient,ward,diagnosis,notes"] + [
        f"P{i:04d},W{i % 9},J{i % 97:02d}.{i % 10},stable overnight obs {i}" for i in range(400)
    ]
    doc = parser.parse(("\n".join(rows) + "\n").encode(), "census.csv")
    chunks = TokenChunker(embedder.tokenizer, 64, 8).chunk(doc)
    assert len(chunks) > 10
    for chunk in chunks:
        lines = chunk.text.split("\n")
        assert all(line in rows for line in lines), "every chunk holds whole rows only"


def test_docx_table_rows_are_elements_of_their_own(parser: UnstructuredParser) -> None:
    doc = _parsed(parser, "office/tbl-cell-access.docx")
    assert [e.text for e in doc.elements[:3]] == ["1 | 2 | 3", "4 | 5 | 6", "7 | 8 | 9"]
    assert doc.text.startswith("1 | 2 | 3\n4 | 5 | 6\n7 | 8 | 9\n\n1 | 2 | 3"), "rows of one table are one line each"


# -- decompression bombs ------------------------------------------------------------------------


def _bomb_docx(inflated_mib: int) -> bytes:
    """A valid DOCX whose word/document.xml inflates to ``inflated_mib`` MiB of whitespace."""
    source = zipfile.ZipFile(DOCS / "office" / "tbl-cell-access.docx")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                bomb.writestr(item, source.read(item))
        with bomb.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(source.read("word/document.xml")[:-30])
            block = b" " * (1 << 20)
            for _ in range(inflated_mib):
                part.write(block)
    return buffer.getvalue()


def test_a_decompression_bomb_docx_is_refused_before_it_is_inflated(parser: UnstructuredParser) -> None:
    data = _bomb_docx(64)
    assert len(data) < 1 << 20, "the bomb is small on the wire"
    with pytest.raises(DecompressionBomb) as raised:
        parser.parse(data, "contract.docx")
    assert "decompression bomb" in raised.value.message and "Re-save the document" in raised.value.message
    assert raised.value.code == "decompression_bomb" and raised.value.status == 422


def test_an_ordinary_docx_is_not_mistaken_for_a_bomb(parser: UnstructuredParser) -> None:
    data = (DOCS / "office" / "tbl-cell-access.docx").read_bytes()
    assert parser.parse(data, "t.docx").mime == sniff.DOCX

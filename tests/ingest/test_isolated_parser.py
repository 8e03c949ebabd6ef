"""The parser in a child process (the default): the same documents and errors as in the worker, crashes
kept to one document, and no child left behind.

What a user would notice if these broke: a PDF indexed differently from before, an error that no longer
says what to do, one malformed file stopping the whole worker, or stray processes after a shutdown.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import documents as docs
from ingest.config import ParserSettings
from ingest.errors import CorruptDocument, EncryptedDocument, IngestError
from ingest.parsing.isolated import IsolatedParser, ParserStopped
from ingest.parsing.port import ParsedDocument
from ingest.parsing.unstructured_parser import UnstructuredParser
from ingest.runtime import build_components
from ingest.worker import drain
from tests.conftest import CUAD, DOCS, make_settings
from tests.ingest.conftest import TENANT, upload

CUAD_PDF = CUAD / "pdf"
CRASH = b"%PDF-1.4\n% stop the parser here\n"

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="test documents not present")


class CrashingParser(UnstructuredParser):
    """Built in the child: ends the process, as a segfault or the kernel's OOM killer would, on ``CRASH``."""

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        if data == CRASH:
            os._exit(9)
        return super().parse(data, filename)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:  # still listed: a zombie not yet reaped counts as gone
        return stat.read().split(") ")[1].startswith("Z")


@pytest.fixture(scope="module")
def isolated() -> Iterator[IsolatedParser]:
    parser = IsolatedParser()
    parser.warm_up()
    yield parser
    parser.close()


@pytest.mark.parametrize(
    "path",
    [
        DOCS / "pdf" / "multilang.pdf",
        DOCS / "pdf" / "GeoBase_NHNC1_Data_Model_UML_EN.pdf",
        DOCS / "office" / "tbl-cell-access.docx",
        DOCS / "office" / "dml-fill.pptx",
        DOCS / "office" / "shp-embedded-xlsx.xlsx",
        DOCS / "html" / "utf8.html",
        DOCS / "email" / "00002.eml",
        pytest.param(
            DOCS / "scanned" / "cardinal.pdf",
            marks=pytest.mark.skipif(shutil.which("tesseract") is None, reason="Tesseract is not installed"),
        ),
        next(iter(sorted(CUAD_PDF.glob("*.pdf")))),
    ],
    ids=lambda p: p.name,
)
def test_documents_parse_in_the_child_exactly_as_in_the_worker(
    isolated: IsolatedParser, parser: UnstructuredParser, path: Path
) -> None:
    """Every format the child reads (OCR and e-mail attachments included), though it runs without torch."""
    data = path.read_bytes()
    assert isolated.parse(data, path.name) == parser.parse(data, path.name)
    assert isolated.child_pid not in (None, os.getpid())


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (DOCS / "bad" / "invalid.pdf", CorruptDocument),
        (DOCS / "bad" / "crazyones-encrypted-256.pdf", EncryptedDocument),
        (DOCS / "bad" / "truncated.docx", CorruptDocument),
    ],
    ids=lambda v: getattr(v, "name", getattr(v, "__name__", str(v))),
)
def test_errors_cross_from_the_child_with_their_class_code_and_message(
    isolated: IsolatedParser, parser: UnstructuredParser, path: Path, error: type[IngestError]
) -> None:
    with pytest.raises(error) as here:
        parser.parse(path.read_bytes(), path.name)
    with pytest.raises(error) as there:
        isolated.parse(path.read_bytes(), path.name)
    assert (there.value.code, there.value.message, there.value.param) == (
        here.value.code,
        here.value.message,
        here.value.param,
    )


def test_text_markdown_and_csv_are_read_here_without_a_child() -> None:
    parser = IsolatedParser()
    try:
        assert parser.parse(b"# Notes\n\nFirst point.\n", "notes.md").mime == "text/markdown"
        assert parser.parse(b"Plain words.\n", "a.txt").elements
        assert parser.parse(b"name,dose\naspirin,100 mg\n", "meds.csv").elements
        assert parser.child_pid is None
    finally:
        parser.close()


def test_a_child_that_dies_fails_only_its_document_and_the_next_gets_a_new_child() -> None:
    pdf = DOCS / "pdf" / "example.pdf"
    parser = IsolatedParser(CrashingParser)
    try:
        first = parser.parse(pdf.read_bytes(), pdf.name)
        crashed = parser.child_pid
        assert crashed is not None
        with pytest.raises(ParserStopped, match="exit code 9") as stopped:
            parser.parse(CRASH, "crash.pdf")
        assert stopped.value.code == "parser_stopped" and stopped.value.retryable and "upload" in stopped.value.message
        assert gone(crashed)
        assert parser.parse(pdf.read_bytes(), pdf.name) == first
        assert parser.child_pid not in (None, crashed)

        idle = parser.child_pid
        assert idle is not None
        os.kill(idle, signal.SIGKILL)  # killed between documents (memory pressure): nobody's document fails
        deadline = time.monotonic() + 10
        while parser.child_pid is not None and time.monotonic() < deadline:  # until the kernel reports it ended
            time.sleep(0.01)
        assert parser.parse(pdf.read_bytes(), pdf.name) == first
        assert parser.child_pid not in (None, idle)
    finally:
        parser.close()


def test_the_default_components_parse_pdfs_in_a_child_and_end_it_on_close(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    pdf = DOCS / "pdf" / "multilang.pdf"
    components = build_components(make_settings(tmp_path / "data"), embedder=embedder)
    try:
        assert isinstance(components.parser, IsolatedParser)
        child = components.parser.child_pid  # started by the warm-up, loading while the embedder did
        assert child is not None
        document = docs.submit(components, upload(pdf)).document
        drain(components)
        stored = docs.get_document(components, TENANT, document.id)
        assert (stored.status, stored.pages) == ("ready", 1)
        assert components.parser.child_pid == child
        with open(f"/proc/{child}/maps") as maps:
            assert "libtorch" not in maps.read()  # the parser's process leaves torch to the embedder's
    finally:
        components.close()
    assert components.parser.child_pid is None
    assert gone(child)


def test_isolation_can_be_turned_off(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path / "data", parser=ParserSettings(isolated=False))
    components = build_components(settings, embedder=embedder, warm_parser=False)
    try:
        assert type(components.parser) is UnstructuredParser
    finally:
        components.close()

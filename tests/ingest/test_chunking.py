"""Chunks are exact slices, fit the embedder's window, keep elements whole and never cut words."""

from __future__ import annotations

import pytest

from ingest.chunking import TokenChunker
from ingest.parsing.port import Element, ParsedDocument
from tests.conftest import CUAD


def _doc(paragraphs: list[str], kinds: list[str] | None = None) -> ParsedDocument:
    text = "\n\n".join(paragraphs)
    elements, pos = [], 0
    for i, para in enumerate(paragraphs):
        elements.append(Element(para, pos, pos + len(para), 1 + i // 3, (kinds or ["text"] * len(paragraphs))[i]))
        pos += len(para) + 2
    return ParsedDocument(
        text=text, elements=elements, pages=1 + (len(paragraphs) - 1) // 3, mime="text/plain", title=None
    )


@pytest.fixture(scope="module")
def chunker(embedder) -> TokenChunker:  # type: ignore[no-untyped-def]
    return TokenChunker(embedder.tokenizer, max_tokens=64, overlap_tokens=8)


def test_chunks_are_exact_slices_within_the_token_budget(chunker: TokenChunker, embedder) -> None:  # type: ignore[no-untyped-def]
    contract = sorted((CUAD / "contracts").glob("*.txt"))[0].read_text(encoding="utf-8")
    paragraphs = [p for p in contract.split("\n\n") if p.strip()][:40]
    doc = _doc(paragraphs)
    chunks = chunker.chunk(doc)
    assert len(chunks) > 3
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        counted = len(embedder.tokenizer(chunk.text, add_special_tokens=False)["input_ids"])
        assert counted <= 64 + 2, (chunk.ordinal, counted)  # re-tokenising a slice may merge at most at its edges


def test_every_word_of_the_document_is_in_some_chunk(chunker: TokenChunker) -> None:
    doc = _doc(["alpha " * 150 + "omega", "short paragraph here", "last words"])
    covered = set()
    for chunk in chunker.chunk(doc):
        covered.update(range(chunk.start, chunk.end))
    for element in doc.elements:
        for i, ch in enumerate(element.text):
            if not ch.isspace():
                assert element.start + i in covered


def test_long_elements_split_at_word_boundaries_with_overlap(chunker: TokenChunker) -> None:
    words = " ".join(f"immunohistochemistry{i}" for i in range(80))
    doc = _doc([words])
    chunks = chunker.chunk(doc)
    assert len(chunks) >= 2
    for chunk in chunks:
        assert chunk.start == 0 or doc.text[chunk.start - 1] == " "
        assert chunk.end == len(doc.text) or doc.text[chunk.end] == " "
    assert chunks[1].start < chunks[0].end  # windows of one long element overlap


def test_small_elements_are_packed_whole_and_titles_start_chunks(chunker: TokenChunker) -> None:
    doc = _doc(
        ["Intro text one.", "Intro text two.", "Section B", "Body of B.", "More of B."],
        ["text", "text", "title", "text", "text"],
    )
    chunks = chunker.chunk(doc)
    assert [c.text for c in chunks] == ["Intro text one.\n\nIntro text two.", "Section B\n\nBody of B.\n\nMore of B."]
    assert chunks[1].page == 1 and chunks[1].page_end == 2


def test_overlap_must_be_smaller_than_budget(embedder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        TokenChunker(embedder.tokenizer, max_tokens=32, overlap_tokens=32)

"""Chunks are exact slices, fit the embedder's window, keep elements whole and never cut words."""

from __future__ import annotations

import pytest

from ingest.chunking import TokenChunker
from ingest.parsing import sniff
from ingest.parsing.port import Element, ParsedDocument
from ingest.parsing.text import parse_text
from ingest.structure import read_structure
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


REAL_CONTRACTS = [
    "ACCURAYINC_09_01_2010-EX-10.31-DISTRIBUTOR AGREEMENT.txt",  # numbering run together on long lines
    "2ThemartComInc_19990826_10-12G_EX-10.10_6700288_EX-10.10_Co-Branding Agreement_ Agency Agreement.txt",
    "ALCOSTORESINC_12_14_2005-EX-10.26-AGENCY AGREEMENT.txt",  # ARTICLE I / Section 1.01
    "HYPERIONSOFTWARECORP_09_28_1994-EX-10.47-EXCLUSIVE DISTRIBUTOR AGREEMENT.txt",  # indented, underlined titles
]


@pytest.fixture(scope="module")
def clause_chunker(embedder) -> TokenChunker:  # type: ignore[no-untyped-def]
    return TokenChunker(embedder.tokenizer, max_tokens=200, overlap_tokens=24)


@pytest.mark.parametrize("contract", REAL_CONTRACTS)
def test_real_contracts_chunk_by_clause_as_exact_covering_slices(clause_chunker: TokenChunker, contract: str) -> None:
    doc = parse_text((CUAD / "contracts" / contract).read_text(encoding="utf-8"), sniff.TEXT)
    chunks = clause_chunker.chunk(doc)
    covered = set()
    for before, chunk in zip([None, *chunks], chunks, strict=False):
        assert doc.text[chunk.start : chunk.end] == chunk.text and chunk.token_count <= 200
        assert before is None or before.start <= chunk.start
        covered.update(range(chunk.start, chunk.end))
    assert all(ch.isspace() for i, ch in enumerate(doc.text) if i not in covered)
    token_starts = [start for start, end in clause_chunker.token_offsets(doc.text) if end > start]
    clauses = read_structure(doc).clauses
    assert len(clauses) > 15
    for clause in clauses:
        size = sum(1 for start in token_starts if clause.start <= start < clause.end)
        if 0 < size <= 200:
            end = clause.start + len(doc.text[clause.start : clause.end].rstrip())
            assert any(c.start <= clause.start and end <= c.end for c in chunks), (clause.heading, size)
    assert sum(1 for c in chunks if c.heading) > len(chunks) * 0.8


def test_the_governing_law_chunk_carries_its_section_path(clause_chunker: TokenChunker) -> None:
    text = (CUAD / "contracts" / REAL_CONTRACTS[0]).read_text(encoding="utf-8")
    at = text.index("12.1. Governing Law. This Agreement")
    chunk = next(c for c in clause_chunker.chunk(parse_text(text, sniff.TEXT)) if c.start <= at < c.end)
    assert chunk.heading.startswith("12. MISCELLANEOUS PROVISIONS")
    assert "12.1. Governing Law" in chunk.text and "11.4" not in chunk.text


def test_sibling_clauses_share_a_chunk_and_a_new_section_starts_one(chunker: TokenChunker) -> None:
    body = "Each party shall keep the other informed of any change in its address for notices."
    doc = _doc(
        [
            "1. NOTICES",
            f"1.1 Address. {body}",
            f"1.2 Form. {body}",
            "2. TERM",
            f"2.1 Duration. {body}",
            f"2.2 Renewal. {body}",
        ]
    )
    chunks = chunker.chunk(doc)
    assert [c.text.split("\n\n")[0] for c in chunks] == ["1. NOTICES", "2. TERM"]
    assert [c.heading for c in chunks] == ["1. NOTICES", "2. TERM"]


def test_a_clause_that_fits_is_not_cut_even_inside_one_paragraph(chunker: TokenChunker) -> None:
    filler = "The supplier shall deliver the goods on time and in good condition to the buyer. " * 3
    text = f"3. SUPPLY     3.1. Delivery. {filler}     3.2. Acceptance. {filler}     3.3. Risk. {filler}"
    doc = ParsedDocument(text, [Element(text, 0, len(text), None, "text")], 1, "text/plain", None)
    chunks = chunker.chunk(doc)
    for number in ("3.2. Acceptance", "3.3. Risk"):
        start = text.index(number)
        assert any(c.start == start for c in chunks), number  # each clause of ~50 tokens opens its chunk
    assert all(c.token_count <= 64 for c in chunks)
    assert chunks[-1].heading == "3. SUPPLY > 3.3. Risk"

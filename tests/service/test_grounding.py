"""The pieces of grounded answering on their own: sentence spans, checkable claims, values, the verifier."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from service.answering import salient, values
from service.answering.evidence import sentences_of
from service.answering.generated import SentenceBuffer, pieces
from service.answering.sentences import split
from service.answering.verify import LexicalCheck, Verifier
from service.question import analyse
from tests.chunks import scored_chunk

CLAUSES = """12. MISCELLANEOUS

12.3 Governing Law. This Agreement shall be governed by the laws of the State of Delaware, without regard to \
conflicts of law. Acme Corp. and Globex Inc. agree that notices (e.g. invoices) go to Dr. Smith at No. 4 Main St.
The Licensee shall pay (a) a fee of $10,000; (b) royalties of 5%; and (c) all taxes."""
MEDICAL = (
    "ASSESSMENT AND PLAN:\nPt. given 5 mg. of morphine approx. twice daily. Dr. Jones to review on Mon. "
    "Follow up in 2 wks."
)


def texts(text: str) -> list[str]:
    return [s.text for s in split(text)]


def test_legal_sentences_keep_abbreviations_and_split_headings_and_clause_lists() -> None:
    assert texts(CLAUSES) == [
        "12. MISCELLANEOUS",
        "12.3 Governing Law.",
        "This Agreement shall be governed by the laws of the State of Delaware, without regard to conflicts of law.",
        "Acme Corp. and Globex Inc. agree that notices (e.g. invoices) go to Dr. Smith at No. 4 Main St.",
        "The Licensee shall pay (a) a fee of $10,000;",
        "(b) royalties of 5%;",
        "and (c) all taxes.",
    ]


def test_medical_abbreviations_do_not_end_sentences() -> None:
    assert texts(MEDICAL) == [
        "ASSESSMENT AND PLAN:",
        "Pt. given 5 mg. of morphine approx. twice daily.",
        "Dr. Jones to review on Mon.",
        "Follow up in 2 wks.",
    ]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab A.;:()\n1Z?!\"'")), max_size=300))
def test_every_sentence_is_an_exact_ordered_slice_and_no_text_is_lost(text: str) -> None:
    spans = split(text)
    for s in spans:
        assert text[s.start : s.end] == s.text and s.text == s.text.strip() and s.text
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    assert "".join(s.text for s in spans).replace(" ", "").replace("\n", "") == "".join(text.split())


def test_claims_are_normalised_so_the_same_fact_written_two_ways_matches() -> None:
    source = "The term ends on December 31, 2014 and renews for thirty (30) days; the fee is $1,000,000 (DELAWARE)."
    assert (
        salient.unsupported(salient.claims("It ends 12/31/14, renews for 30 days, fee 1,000,000, Delaware."), source)
        == []
    )
    invented = salient.claims("It is governed by Section 301(c)(4) of the Federal Trade Commission for 60 days.")
    missing = salient.unsupported(invented, source)
    assert {"section:301(c)(4)", "name:federal", "name:commission", "duration:60 day"} <= set(missing)


def test_values_are_copied_verbatim_from_the_sentence() -> None:
    assert values.law("governed by the laws of the State of New York, without regard to") == "New York"
    assert values.law("construed under the laws of England and Wales.") == "England and Wales"
    assert values.date_value("continue until December 31, 2014, unless terminated") == "December 31, 2014"
    assert (
        values.date_value("for three (3) years from the Effective Date.") == "three (3) years from the Effective Date"
    )
    assert values.renewal("renews for successive one (1) year terms") == "successive one (1) year"
    assert values.notice("on ninety (90) days prior written notice") == "ninety (90) days"
    assert values.notice("for ninety (90) days") is None  # a duration, but not of notice
    assert values.amount("a fee of US$ 25,000 per year") == "US$ 25,000"


def test_a_question_is_split_into_its_ask_and_the_document_it_names() -> None:
    q = analyse('Which jurisdiction\'s law governs the Promotion Agreement between SIGA TECHNOLOGIES, INC. ("SIGA")?')
    assert q.kind == "law" and "Promotion" not in q.ask and "SIGA" in q.reference and "governs" in q.ask
    assert analyse("How much notice is needed to stop the NDA between Acme and Globex from renewing?").kind == "notice"
    assert analyse("When does the initial term of the NDA expire?").kind == "date"
    assert analyse("What is the dress code under the NDA between Acme and Globex?").kind is None


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier(LexicalCheck(QdrantBm25Encoder()))


def test_the_verifier_keeps_supported_sentences_and_names_what_an_invented_one_lacks(verifier: Verifier) -> None:
    source = sentences_of([scored_chunk(CLAUSES)])
    question = "Which state's law governs the NDA between Acme and Globex?"
    ok = verifier.verify("The Agreement is governed by the laws of Delaware.", question, source)
    assert ok.supported and "Delaware" in ok.evidence[0].text
    invented = verifier.verify("It is governed by Section 301(c)(4) of the Federal Trade Commission.", question, source)
    assert not invented.supported and "section:301(c)(4)" in invented.missing
    negated = verifier.verify("The Agreement is not governed by the laws of Delaware.", question, source)
    assert not negated.supported and "negation:not" in negated.missing
    for empty in ("Yes.", "The.", "The NDA between Acme and Globex."):
        assert not verifier.verify(empty, question, source).supported  # nothing checkable is nothing verified


def test_generated_text_is_cut_into_sentences_with_their_markers() -> None:
    found = pieces("Delaware law governs [1]. Notice is 30 days. [2] See Dr. Smith [1, 3].")
    assert [(p.plain, p.numbers) for p in found] == [
        ("Delaware law governs.", [1]),
        ("Notice is 30 days.", [2]),
        ("See Dr. Smith.", [1, 3]),
    ]


def test_a_stream_releases_a_sentence_only_when_the_next_one_has_begun() -> None:
    buffer = SentenceBuffer()
    released = [
        (p.plain, p.numbers)
        for delta in ["Delaware law ", "governs. ", "[1] Notice", " is 30 days [2]."]
        for p in buffer.feed(delta)
    ]
    assert released == [("Delaware law governs.", [1])]  # its marker arrived before it was let go
    assert [p.numbers for p in pieces("Delaware law governs. [1]")] == [[1]]
    assert [p.plain for p in buffer.flush()] == ["Notice is 30 days."]

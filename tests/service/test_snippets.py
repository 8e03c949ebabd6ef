"""Citation snippets show the sentences that hold the question's terms, not just the chunk's head."""

from __future__ import annotations

from ingest.embedding.bm25_encoder import QdrantBm25Encoder
from service.snippets import Focus, sentence_starts, snippet

CHUNK = (
    "4. TERM AND TERMINATION\nThis Agreement remains in force for two (2) years from the Effective Date. "
    "Either Party may terminate it earlier on thirty (30) days' written notice to the other Party.\n\n"
    "5. RETURN OF MATERIALS\nWithin ten (10) business days after termination the receiving Party shall "
    "return or destroy all Confidential Information.\n\n6. GOVERNING LAW\nThis Agreement is governed by the "
    "laws of the State of Delaware, without regard to its conflict of laws rules."
)


def _focus(question: str) -> Focus:
    encoder = QdrantBm25Encoder()
    return Focus(encoder, frozenset(encoder.embed_query(question).indices))


def test_the_snippet_starts_at_the_clause_that_answers() -> None:
    shown = snippet(CHUNK, 160, _focus("Which state's law governs the agreement?"))
    assert shown.startswith("… 6. GOVERNING LAW") and "governed by the laws of the State of Delaware" in shown


def test_without_a_match_or_a_focus_the_snippet_is_the_head_of_the_chunk() -> None:
    head = snippet(CHUNK, 160)
    assert head.startswith("4. TERM AND TERMINATION") and head.endswith(" …") and len(head) <= 162
    assert snippet(CHUNK, 160, _focus("sourdough recipe")) == head
    assert snippet(CHUNK, 160, _focus("How long does the agreement remain in force?")) == head
    assert snippet("Short text.", 160, _focus("text")) == "Short text."


def test_sentences_start_after_stops_and_line_breaks() -> None:
    starts = sentence_starts("One. Two!\nThree")
    assert starts == [0, 5, 10]

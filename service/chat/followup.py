"""Turning a follow-up ("and how long does it last?") into a standalone question before retrieval.

The generator rewrites the last user message with the conversation as context. Small models (the
packaged 135M one) often answer instead of rewriting, echo the follow-up unchanged, or return
nothing, so the rewrite is used only when it is a question about what the follow-up asked that
carries a word over from the conversation. Otherwise the follow-up is searched together with the
previous user question (``"<follow-up> (follow-up to: <previous question>)"``), which keeps the
subject in the query and the actual question first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.generation.port import ChatMessage, GenerationParams, Generator

REWRITE_PROMPT = "You rewrite follow-up questions so they make sense alone. Reply with one question only."
# One worked example: the packaged 135M model follows a shown pattern far better than an instruction.
EXAMPLE = (
    "Previous question: Who signed the lease with Initech?\nFollow-up: When does it expire?",
    "When does the lease with Initech expire?",
)
TURN_CHARS = 300
MAX_QUESTION_CHARS = 4000
QUESTION_WORDS = frozenset(
    re.findall(
        r"\w+",
        """
    what which who whom whose when where why how is are was were do does did can could should would will shall
    may might has have had list name summarize summarise explain describe give tell show find compare""",
    )
)
STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        """
    a an the of to in on for and or is are was were be it its this that these those they them their what which who
    how when where why do does did can could should would will about with by from as at me my we our you your""",
    )
)
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")


@dataclass(frozen=True)
class Turn:
    role: str  # "user" | "assistant"
    text: str


@dataclass(frozen=True)
class Standalone:
    question: str
    how: str  # "as asked" | "rewritten" | "concatenated"


def standalone_question(turns: Sequence[Turn], generator: Generator, params: GenerationParams) -> Standalone:
    """The last user turn as a question that stands on its own; ``turns`` ends with that turn."""
    follow_up = turns[-1].text.strip() or turns[-1].text  # never empty: the schema asked for a visible character
    previous = [t.text.strip() for t in turns[:-1] if t.role == "user" and t.text.strip()]
    if not previous:
        return Standalone(follow_up[:MAX_QUESTION_CHARS], "as asked")
    rewrite = clean_rewrite(generator.complete(rewrite_messages(turns), params))
    context = " ".join(t.text for t in turns[:-1])
    if usable(rewrite, follow_up, context):
        return Standalone(rewrite[:MAX_QUESTION_CHARS], "rewritten")
    return Standalone(f"{follow_up} (follow-up to: {previous[-1]})"[:MAX_QUESTION_CHARS], "concatenated")


def rewrite_messages(turns: Sequence[Turn]) -> list[ChatMessage]:
    previous = next(t.text for t in reversed(turns[:-1]) if t.role == "user" and t.text.strip())
    ask = f"Previous question: {_short(previous)}\nFollow-up: {_short(turns[-1].text)}"
    return [
        ChatMessage("system", REWRITE_PROMPT),
        ChatMessage("user", EXAMPLE[0]),
        ChatMessage("assistant", EXAMPLE[1]),
        ChatMessage("user", ask),
    ]


def _short(text: str) -> str:
    return " ".join(text.split())[:TURN_CHARS]


def clean_rewrite(raw: str) -> str:
    """The first non-empty line, without a label the model may have echoed or quotes around it."""
    line = next((ln.strip() for ln in raw.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^(rewritten|standalone|follow-up)?\s*question\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip().strip("\"'“”").strip()


def usable(rewrite: str, follow_up: str, context: str) -> bool:
    """A question (not an answer, a refusal or an echo) about what the follow-up asked, with the subject added.

    "Added" means a content word from the conversation that the follow-up itself did not contain.
    """
    words = [w.lower() for w in WORD.findall(rewrite)]
    if not 3 <= len(words) <= 60 or re.search(r"\[\d+\]", rewrite) or "not found" in rewrite.lower():
        return False
    if not (rewrite.endswith("?") or words[0] in QUESTION_WORDS):
        return False
    asked, said = _content_words(follow_up), _content_words(context)
    about_it = not asked or bool(asked & set(words))
    return about_it and bool((set(words) - asked - STOPWORDS) & said)


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)} - STOPWORDS

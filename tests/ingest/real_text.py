"""Real prose for embedder tests: windows of CUAD contracts and SciFact abstracts from the shared data."""

from __future__ import annotations

import json

from tests.conftest import DATA


def real_texts(contracts: slice, words: int, abstracts: int) -> list[str]:
    """Windows of ``words`` words (at most 10 per contract) from ``contracts`` of the sorted CUAD texts, then
    the first ``abstracts`` SciFact abstracts: legal and scientific prose."""
    texts: list[str] = []
    for path in sorted((DATA / "cuad" / "contracts").glob("*.txt"))[contracts]:
        split = path.read_text(errors="replace").split()
        texts += [" ".join(split[i : i + words]) for i in range(0, min(len(split), 10 * words), words)]
    with (DATA / "scifact" / "corpus.jsonl").open() as corpus:
        texts += [json.loads(line)["text"] for _, line in zip(range(abstracts), corpus, strict=False)]
    return [t for t in texts if t.strip()]

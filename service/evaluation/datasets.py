"""Evaluation data sets on disk: BEIR (document-level judgments) and span data sets (LegalBench-RAG style).

BEIR: ``corpus.jsonl`` (``{"_id", "title", "text"}``), queries in ``queries-SPLIT.jsonl`` (else
``queries.jsonl``), judgments in ``qrels/SPLIT.tsv`` (``query-id corpus-id score``, header line).
Span: documents as ``contracts/*.txt`` (the file name is the document id), queries as above,
judgments in ``qrels-spans-SPLIT.jsonl``: ``{"query_id", "doc", "spans": [{"start", "end"}]}`` with
character offsets into the file read as UTF-8. Only queries that have judgments are evaluated.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingest.errors import InvalidRequest

Kind = Literal["beir", "span"]


@dataclass(frozen=True)
class CorpusDocument:
    """One document to index: ``doc_id`` is the data set's own id (BEIR ``_id`` or the file name)."""

    doc_id: str
    title: str
    text: str
    filename: str


@dataclass(frozen=True)
class Span:
    doc_id: str
    start: int
    end: int


@dataclass
class EvalDataset:
    """Queries and judgments of one split; the corpus is read lazily (it can be large)."""

    name: str
    kind: Kind
    root: Path
    split: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)  # beir: query -> doc -> grade
    spans: dict[str, list[Span]] = field(default_factory=dict)  # span: query -> relevant spans

    def corpus_files(self) -> list[Path]:
        if self.kind == "beir":
            return [self.root / "corpus.jsonl"]
        return sorted((self.root / "contracts").glob("*.txt"))

    def documents(self) -> Iterator[CorpusDocument]:
        """Every corpus document, in a stable order."""
        if self.kind == "beir":
            yield from _beir_corpus(self.root / "corpus.jsonl")
            return
        for path in self.corpus_files():
            yield CorpusDocument(path.name, path.name, path.read_bytes().decode("utf-8-sig"), path.name)

    def corpus_digest(self) -> str:
        """SHA-256 over the corpus files' names and bytes (queries and judgments do not change the index)."""
        digest = hashlib.sha256()
        for path in self.corpus_files():
            digest.update(path.name.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def load_dataset(root: Path, split: str) -> EvalDataset:
    """Detect the format of ``root`` and load ``split``'s queries and judgments.

    :raises InvalidRequest: not a BEIR or span data set, or the split has no queries or judgments.
    """
    if not root.is_dir():
        raise InvalidRequest(f"{root} is not a directory; pass a BEIR or span data set directory", param="DATASET_DIR")
    queries = _queries(root, split)
    name = root.resolve().name
    if (root / "corpus.jsonl").is_file():
        qrels = _beir_qrels(_require(root / "qrels" / f"{split}.tsv", split))
        return EvalDataset(name, "beir", root, split, _judged(queries, qrels), qrels=qrels)
    if (root / "contracts").is_dir():
        spans = _span_qrels(_require(root / f"qrels-spans-{split}.jsonl", split))
        return EvalDataset(name, "span", root, split, _judged(queries, spans), spans=spans)
    raise InvalidRequest(
        f"{root} holds neither corpus.jsonl (BEIR) nor contracts/ (span data set)", param="DATASET_DIR"
    )


def _require(path: Path, split: str) -> Path:
    if not path.is_file():
        raise InvalidRequest(
            f"no judgments for split {split!r}: {path} is missing; pick another --split", param="split"
        )
    return path


def _queries(root: Path, split: str) -> dict[str, str]:
    path = root / f"queries-{split}.jsonl"
    if not path.is_file():
        path = root / "queries.jsonl"
    if not path.is_file():
        raise InvalidRequest(
            f"no queries for split {split!r}: neither queries-{split}.jsonl nor queries.jsonl in {root}; "
            "pick another --split",
            param="split",
        )
    return {str(row["_id"]): str(row["text"]) for row in _jsonl(path)}


def _judged(queries: dict[str, str], judged: Mapping[str, object]) -> dict[str, str]:
    kept = {qid: text for qid, text in queries.items() if qid in judged}
    if not kept:
        raise InvalidRequest("no query of this split has judgments; check --split", param="split")
    return kept


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _beir_corpus(path: Path) -> Iterator[CorpusDocument]:
    for row in _jsonl(path):
        doc_id = str(row["_id"])
        yield CorpusDocument(doc_id, str(row.get("title") or ""), str(row.get("text") or ""), f"{doc_id}.txt")


def _beir_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # header line
            if int(row[2]) > 0:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def _span_qrels(path: Path) -> dict[str, list[Span]]:
    spans: dict[str, list[Span]] = {}
    for row in _jsonl(path):
        doc = str(row["doc"])
        found = row["spans"]
        if not isinstance(found, list):
            raise InvalidRequest(f"{path.name}: spans of query {row['query_id']} must be a list of {{start, end}}")
        spans.setdefault(str(row["query_id"]), []).extend(Span(doc, int(s["start"]), int(s["end"])) for s in found)
    return spans

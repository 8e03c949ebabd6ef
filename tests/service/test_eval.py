"""``enclave eval``: metrics as BEIR and LegalBench-RAG define them, data set formats, the isolated reusable index."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.config import Settings
from ingest.errors import InvalidRequest
from service.evaluation import metrics
from service.evaluation.corpus_index import open_eval_index
from service.evaluation.datasets import load_dataset
from service.evaluation.runner import evaluate

REPO = Path(__file__).resolve().parents[2]

DOCS = {
    "d1": ("Governing law", "This agreement is governed by the laws of the State of Delaware."),
    "d2": ("Payment terms", "Invoices are payable within thirty days of receipt by wire transfer."),
    "d3": (
        "Confidentiality",
        "Each party shall keep the other party's confidential information secret for five years.",
    ),
    "d4": ("Photosynthesis", "Chlorophyll absorbs light to convert carbon dioxide and water into glucose."),
}
QUERIES = {
    "q1": "Which state's law governs the agreement?",
    "q2": "When are invoices payable?",
    "q3": "How do plants turn light into sugar?",
}
QRELS = {"q1": "d1", "q2": "d2", "q3": "d4"}


def _beir(root: Path, docs: dict[str, tuple[str, str]] = DOCS) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in docs.items())
    )
    (root / "queries-test.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS.items())
    )
    return root


def test_ndcg_recall_and_mrr_match_the_textbook_values() -> None:
    ranking = ["a", "x", "b", "y"]
    qrels = {"a": 1, "b": 1, "c": 1}
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics.ndcg_at(ranking, qrels, 10) == pytest.approx((1 + 1 / math.log2(4)) / idcg)
    assert metrics.recall_at(ranking, qrels, 2) == pytest.approx(1 / 3)
    assert metrics.mrr_at(["x", "b"], qrels, 10) == 0.5 and metrics.mrr_at(["x", "b"], qrels, 1) == 0.0
    assert metrics.dedupe(["d1", "d2", "d1", "d3"]) == ["d1", "d2", "d3"]


def test_span_precision_and_recall_count_characters_once() -> None:
    judged = [("doc", 100, 200)]
    retrieved = [("doc", 50, 150), ("doc", 140, 160), ("other", 100, 200)]  # overlapping chunks count once
    precision, recall = metrics.span_precision_recall(retrieved, judged)
    assert precision == pytest.approx(60 / 210) and recall == pytest.approx(60 / 100)
    assert metrics.span_precision_recall([], judged) == (0.0, 0.0)
    assert metrics.overlaps(("doc", 199, 300), judged) and not metrics.overlaps(("doc", 200, 300), judged)


def test_unknown_directory_layout_and_missing_split_are_rejected_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="neither corpus.jsonl"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "queries.jsonl").write_text('{"_id": "1", "text": "q"}\n')
        load_dataset(tmp_path / "empty", "test")
    root = _beir(tmp_path / "beir")
    with pytest.raises(InvalidRequest, match="pick another --split"):
        load_dataset(root, "dev")


def test_index_is_built_once_reused_when_unchanged_and_rebuilt_when_the_corpus_changes(
    tmp_path: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    root = _beir(tmp_path / "tiny")
    settings = Settings(data_dir=tmp_path / "data")  # type: ignore[call-arg]
    dataset = load_dataset(root, "test")
    first = open_eval_index(dataset, settings, embedder)
    report = evaluate(dataset, first, "hybrid")
    first.close()
    assert first.built and report["queries"] == 3 and report["ndcg@10"] > 0.9 and report["mrr@10"] > 0.9
    again = open_eval_index(dataset, settings, embedder)
    again.close()
    assert not again.built and again.directory == first.directory
    _beir(tmp_path / "tiny2", {**DOCS, "d5": ("Extra", "A new document changes the corpus fingerprint.")})
    changed = load_dataset(tmp_path / "tiny2", "test")
    changed.name = dataset.name
    rebuilt = open_eval_index(changed, settings, embedder)
    rebuilt.close()
    assert rebuilt.built and rebuilt.directory != first.directory and not first.directory.exists()


def _span_dataset(root: Path) -> Path:
    (root / "contracts").mkdir(parents=True)
    filler = "The parties agree to cooperate in good faith on all matters. " * 30
    clause = "This Agreement shall be governed by the laws of the State of New York."
    (root / "contracts" / "alpha.txt").write_text(f"ALPHA SUPPLY AGREEMENT\n\n{filler}\n\n{clause}\n\n{filler}\n")
    (root / "contracts" / "beta.txt").write_text(f"BETA LICENSE AGREEMENT\n\n{filler}\n\nPayment is due monthly.\n")
    text = (root / "contracts" / "alpha.txt").read_text()
    start = text.index(clause)
    (root / "queries-dev.jsonl").write_text(
        json.dumps({"_id": "g", "text": "Which law governs the Alpha supply agreement?"}) + "\n"
    )
    (root / "qrels-spans-dev.jsonl").write_text(
        json.dumps({"query_id": "g", "doc": "alpha.txt", "spans": [{"start": start, "end": start + len(clause)}]})
        + "\n"
    )
    return root


def test_cli_prints_one_json_object_with_the_stable_keys_and_honours_the_data_dir(tmp_path: Path) -> None:
    root = _span_dataset(tmp_path / "contracts-set")
    env = {**os.environ, "ENCLAVE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "service",
        "eval",
        str(root),
        "--split",
        "dev",
        "--mode",
        "hybrid",
        "--k",
        "5",
        "--json",
    ]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    for key in (
        "ndcg@10",
        "recall@10",
        "recall@100",
        "mrr@10",
        "queries",
        "span_recall@10",
        "span_precision@10",
        "latency_p50_ms",
        "latency_p95_ms",
        "ndcg@5",
    ):
        assert key in report, key
    assert report["queries"] == 1 and report["span_recall@10"] == 1.0 and report["mrr@10"] == 1.0
    assert 0 < report["span_precision@10"] < 1
    assert Path(report["index"]["path"]).is_relative_to(tmp_path / "data" / "eval")


def test_per_query_values_follow_the_query_ids_and_the_judged_contract_leads(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    dataset = load_dataset(_span_dataset(tmp_path / "contracts-set"), "dev")
    stack = open_eval_index(dataset, Settings(data_dir=tmp_path / "data"), embedder)  # type: ignore[call-arg]
    try:
        report = evaluate(dataset, stack, "hybrid", per_query=True)
        plain = evaluate(dataset, stack, "hybrid")
    finally:
        stack.close()
    per_query = report["per_query"]
    assert per_query["ids"] == ["g"] and per_query["span_recall@10"] == [report["span_recall@10"]] == [1.0]
    assert report["doc_hit@1"] == 1.0 and per_query["doc_hit@1"] == [1.0]  # alpha's clause comes first
    assert "per_query" not in plain

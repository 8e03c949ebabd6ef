"""Retrieval quality regression: a small, fixed slice of SciFact and of CUAD, scored like ``enclave eval``.

Slices (deterministic): SciFact — the first 40 test queries, the abstracts they judge relevant and
every 40th other abstract as distractors (174 abstracts); CUAD — the first 3 dev contracts with all
their questions (25), plus 3 other contracts as distractors. Small enough for CI (~45 s of CPU), so
the slices are easier than the full sets: their scores are far above the full-set ones (README,
"Retrieval and answer quality"). Floors sit about 0.1 below the values measured on these slices, so a
model or tokenizer update does not trip them but a real regression — a broken fusion, lost context
headers, a BM25 side that stopped matching — does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ingest.config import Settings
from service.evaluation.corpus_index import EvalIndex, open_eval_index
from service.evaluation.datasets import EvalDataset, load_dataset
from service.evaluation.runner import evaluate
from tests.conftest import DATA

SCIFACT, CUAD = DATA / "scifact", DATA / "cuad"
SCIFACT_QUERIES, SCIFACT_DISTRACTOR_STEP = 40, 40
CUAD_CONTRACTS, CUAD_DISTRACTORS = 3, 3

# Measured on these slices: SciFact nDCG@10 hybrid 0.924 (recall@100 1.0), dense 0.939, bm25 0.914;
# CUAD hybrid nDCG@10 0.524, MRR@10 0.405, recall@10 0.870, span recall@10 0.869; with document focus
# nDCG@10 0.753, MRR@10 0.711, span recall@10 0.900 (SciFact with focus: 0.924, unchanged).
SCIFACT_FLOORS = {
    "hybrid": {"ndcg@10": 0.82, "recall@100": 0.90},
    "dense": {"ndcg@10": 0.83},
    "bm25": {"ndcg@10": 0.81},
}
CUAD_FLOORS = {
    "hybrid": {"ndcg@10": 0.38, "recall@10": 0.65, "span_recall@10": 0.65, "span_precision@10": 0.035},
    "hybrid+focus": {"ndcg@10": 0.65, "mrr@10": 0.60, "span_recall@10": 0.80},
}
FOCUS_GAIN = 0.15  # MRR@10 document focus adds on the slice, at least (measured 0.405 -> 0.711)
# On 40 easy queries the branches are close (dense edges out hybrid by 0.015): fusion must not cost more.
FUSION_TOLERANCE = 0.03

pytestmark = pytest.mark.skipif(
    not (SCIFACT / "corpus.jsonl").is_file() or not (CUAD / "contracts").is_dir(),
    reason="needs ../shared/data (ENCLAVE_SHARED_DATA)",
)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _scifact_slice(root: Path) -> Path:
    queries = _lines(SCIFACT / "queries-test.jsonl")[:SCIFACT_QUERIES]
    wanted = {str(q["_id"]) for q in queries}
    qrels = [row.split("\t") for row in (SCIFACT / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    qrels = [row for row in qrels if row[0] in wanted]
    relevant = {row[1] for row in qrels}
    corpus = _lines(SCIFACT / "corpus.jsonl")
    kept = [d for i, d in enumerate(corpus) if str(d["_id"]) in relevant or i % SCIFACT_DISTRACTOR_STEP == 0]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept))
    (root / "queries-test.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in qrels)
    )
    return root


def _cuad_slice(root: Path) -> Path:
    judged = _lines(CUAD / "qrels-spans-dev.jsonl")
    contracts = list(dict.fromkeys(row["doc"] for row in judged))[:CUAD_CONTRACTS]
    others = sorted(p.name for p in (CUAD / "contracts").glob("*.txt") if p.name not in {r["doc"] for r in judged})
    (root / "contracts").mkdir(parents=True)
    for name in contracts + others[:CUAD_DISTRACTORS]:
        shutil.copyfile(CUAD / "contracts" / name, root / "contracts" / name)
    kept = [row for row in judged if row["doc"] in contracts]
    ids = {row["query_id"] for row in kept}
    (root / "queries-dev.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in _lines(CUAD / "queries-dev.jsonl") if q["_id"] in ids)
    )
    (root / "qrels-spans-dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    return root


def _reports(dataset: EvalDataset, stack: EvalIndex, modes: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each mode's report, and ``hybrid+focus``: hybrid with document focus (``ENCLAVE_RETRIEVAL__DOCUMENT_FOCUS``)."""
    try:
        reports = {mode: evaluate(dataset, stack, mode) for mode in modes}  # type: ignore[arg-type]
        return reports | {"hybrid+focus": evaluate(dataset, stack, "hybrid", focus=True)}
    finally:
        stack.close()


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory, embedder) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("scifact-slice")
    dataset = load_dataset(_scifact_slice(root / "scifact"), "test")
    stack = open_eval_index(dataset, Settings(data_dir=root / "data"), embedder)  # type: ignore[call-arg]
    return _reports(dataset, stack, ("hybrid", "dense", "bm25"))


@pytest.fixture(scope="module")
def cuad(tmp_path_factory: pytest.TempPathFactory, embedder) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("cuad-slice")
    dataset = load_dataset(_cuad_slice(root / "cuad"), "dev")
    stack = open_eval_index(dataset, Settings(data_dir=root / "data"), embedder)  # type: ignore[call-arg]
    return _reports(dataset, stack, ("hybrid",))


def _check(report: dict[str, Any], floors: dict[str, float]) -> None:
    low = {name: (report[name], floor) for name, floor in floors.items() if report[name] < floor}
    assert not low, f"below the floor (measured, floor): {low}; full report: {report}"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_scifact_slice_stays_above_its_floors(scifact: dict[str, dict[str, Any]], mode: str) -> None:
    assert scifact[mode]["queries"] == SCIFACT_QUERIES
    _check(scifact[mode], SCIFACT_FLOORS[mode])


def test_hybrid_is_as_good_as_the_better_branch_on_scifact(scifact: dict[str, dict[str, Any]]) -> None:
    scores = {mode: report["ndcg@10"] for mode, report in scifact.items()}
    assert scores["hybrid"] >= max(scores["dense"], scores["bm25"]) - FUSION_TOLERANCE, scores


def test_cuad_slice_finds_the_clauses(cuad: dict[str, dict[str, Any]]) -> None:
    assert cuad["hybrid"]["queries"] >= 20
    _check(cuad["hybrid"], CUAD_FLOORS["hybrid"])


def test_document_focus_ranks_the_clause_inside_the_named_contract(cuad: dict[str, dict[str, Any]]) -> None:
    _check(cuad["hybrid+focus"], CUAD_FLOORS["hybrid+focus"])
    assert cuad["hybrid+focus"]["mrr@10"] >= cuad["hybrid"]["mrr@10"] + FOCUS_GAIN, cuad


def test_document_focus_leaves_abstracts_alone(scifact: dict[str, dict[str, Any]]) -> None:
    """Abstracts name no parties in their openings, so a claim's gene names never narrow the search to one."""
    assert abs(scifact["hybrid+focus"]["ndcg@10"] - scifact["hybrid"]["ndcg@10"]) <= 0.005, scifact

"""Answers with the packaged SmolLM2 over the whole CUAD corpus: refusals, answer rate, short-answer quality.

    .venv/bin/python -m bench.eval_answers signals    # retrieval-only evidence signals (for calibration)
    .venv/bin/python -m bench.eval_answers refusal    # held-out unanswerable vs answerable questions
    .venv/bin/python -m bench.eval_answers quality    # CUAD dev short answers contained in the answer

Each question goes the way ``POST /v1/query`` takes it: hybrid retrieval of ``ENCLAVE_RETRIEVAL__K``
sources, the not-found gate (:func:`service.answering.has_evidence`), then the generator, whose own
"not found" also counts as a refusal. The corpus index is the one ``enclave eval`` builds (reused).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench import answer_match  # noqa: E402
from bench.common import CACHE, DATA, RESULTS
from bench.refusal_questions import CALIBRATION, REPORT  # noqa: E402
from ingest.config import Settings  # noqa: E402
from ingest.embedding.port import SparseEncoder
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder  # noqa: E402
from ingest.index.port import AccessFilter, ScoredChunk  # noqa: E402
from service import answering  # noqa: E402
from service.evaluation.corpus_index import EVAL_TENANT, EvalIndex, open_eval_index  # noqa: E402
from service.evaluation.datasets import load_dataset  # noqa: E402
from service.generation.port import GenerationParams  # noqa: E402
from service.retrieval import Retrieved, retrieve  # noqa: E402


class Asker:
    """Retrieval, gate and (optionally) generation for one question, with every signal recorded."""

    def __init__(self, stack: EvalIndex, settings: Settings, generate: bool, min_support: float = 0.0) -> None:
        self.stack, self.settings, self.min_support = stack, settings, min_support
        self.generator: Any = None
        if generate:
            from service.generation.llama_cpp_generator import SupervisedLlamaGenerator

            self.generator = SupervisedLlamaGenerator(state_dir=Path("/tmp/enclave-bench/eval-answers-generator"))
            self.generator.warm_up()
        cfg = settings.generator
        self.params = GenerationParams(
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            frequency_penalty=cfg.frequency_penalty,
            timeout_s=cfg.timeout_s,
        )

    def ask(self, question: str) -> dict[str, Any]:
        retrieved = retrieve(
            self.stack, question, AccessFilter(tenant=EVAL_TENANT), self.settings.retrieval.k, "hybrid"
        )
        row: dict[str, Any] = {"question": question, **signals(retrieved)}
        row["gate"] = answering.has_evidence(retrieved, self.settings.retrieval.min_dense_score)
        if self.generator is None or not row["gate"]:
            row.update(found=False if not row["gate"] else None, answer=None)
            return row
        started = time.perf_counter()
        text = self.generator.complete(answering.build_messages(question, retrieved.chunks), self.params).strip()
        row["generate_s"] = round(time.perf_counter() - started, 2)
        row["answer"] = text
        row["support"] = answer_support(text, retrieved.chunks, self.stack.sparse)
        row["model_refused"] = answering.is_refusal(text)
        grounded = row["support"] is None or row["support"] >= self.min_support
        row["found"] = bool(text) and not row["model_refused"] and grounded
        return row

    def close(self) -> None:
        if self.generator is not None:
            self.generator.close()


def answer_support(answer: str, sources: list[ScoredChunk], encoder: SparseEncoder) -> float | None:
    """Diagnostic: share of the answer's BM25 terms (stemmed, stopwords dropped) found in its sources.

    Measured, not used by the product: see README, "Retrieval and answer quality".
    """
    terms = set(encoder.embed_query(answering.MARKER.sub(" ", answer)).indices)
    if not terms:
        return None
    seen: set[int] = set()
    for chunk in sources:
        seen.update(encoder.embed_passage(f"{chunk.record.title}\n{chunk.record.text}").indices)
    return len(terms & seen) / len(terms)


def signals(retrieved: Retrieved) -> dict[str, Any]:
    return {
        "dense": retrieved.best_dense_score,
        "coverage": retrieved.term_coverage,
        "docs": [c.record.document_id for c in retrieved.chunks],
    }


def _open(name: str, settings: Settings) -> tuple[Any, EvalIndex]:
    dataset = load_dataset(DATA / name, "dev" if name == "cuad" else "train")
    embedder = SentenceTransformerEmbedder()
    embedder.warm_up()
    return dataset, open_eval_index(dataset, settings, embedder)


def run_signals(settings: Settings) -> dict[str, Any]:
    """Evidence signals for answerable (CUAD dev, SciFact train) and constructed unanswerable questions."""
    out: dict[str, Any] = {}
    for name in ("cuad", "scifact"):
        dataset, stack = _open(name, settings)
        asker = Asker(stack, settings, generate=False)
        out[f"{name}_answerable"] = [asker.ask(q) for q in dataset.queries.values()]
        for kind, questions in {**CALIBRATION, **{f"report_{k}": v for k, v in REPORT.items()}}.items():
            out[f"{name}_unanswerable_{kind}"] = [asker.ask(q) for q in questions]
        stack.close()
    return out


def run_refusal(settings: Settings, answerable: int, held_out: bool = True, min_support: float = 0.0) -> dict[str, Any]:
    """Unanswerable questions (held-out REPORT, or CALIBRATION) and a sample of answerable CUAD dev questions
    (odd or even positions, so the two sets never share one), with the model."""
    dataset, stack = _open("cuad", settings)
    asker = Asker(stack, settings, generate=True, min_support=min_support)
    questions_by_kind = REPORT if held_out else CALIBRATION
    try:
        rows = {kind: [asker.ask(q) for q in questions] for kind, questions in questions_by_kind.items()}
        step = max(1, len(dataset.queries) // answerable)
        sample = list(dataset.queries.values())[(1 if held_out else 0) :: step][:answerable]
        rows["answerable"] = [asker.ask(q) for q in sample]
    finally:
        asker.close()
        stack.close()
    summary = {
        kind: {
            "questions": len(r),
            "found": sum(bool(x["found"]) for x in r),
            "gate_refused": sum(not x["gate"] for x in r),
        }
        for kind, r in rows.items()
    }
    unanswerable = [x for kind, r in rows.items() if kind != "answerable" for x in r]
    summary["refusal_rate_unanswerable"] = round(sum(not x["found"] for x in unanswerable) / len(unanswerable), 3)
    summary["answer_rate_answerable"] = round(
        sum(bool(x["found"]) for x in rows["answerable"]) / len(rows["answerable"]), 3
    )
    return {"summary": summary, "rows": rows}


def run_quality(settings: Settings, limit: int | None, min_support: float = 0.0) -> dict[str, Any]:
    """CUAD dev questions with a normalised short answer: is it contained in Enclave's answer?"""
    dataset, stack = _open("cuad", settings)
    gold = [json.loads(line) for line in (DATA / "cuad" / "answers-dev.jsonl").read_text().splitlines() if line.strip()]
    asker = Asker(stack, settings, generate=True, min_support=min_support)
    rows = []
    try:
        for item in gold[:limit]:
            row = asker.ask(dataset.queries[item["query_id"]])
            text = row["answer"] if row["found"] else ""
            row.update(
                query_id=item["query_id"],
                gold=item["answer"],
                strict=answer_match.strict_match(text, item["answer"]),
                lenient=answer_match.lenient_match(text, item["answer"]),
            )
            rows.append(row)
            print(
                f"{len(rows):>3} {item['query_id'][9:]:<40} {row['lenient']!s:<5} {item['answer']!r:<22}",
                repr(str(row["answer"])[:90]),
                flush=True,
            )
    finally:
        asker.close()
        stack.close()
    return {"summary": _quality_summary(rows), "rows": rows}


def _quality_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row["query_id"].split("-", 1)[1], []).append(row)

    def rates(r: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "questions": len(r),
            "strict": round(sum(x["strict"] for x in r) / len(r), 3),
            "lenient": round(sum(x["lenient"] for x in r) / len(r), 3),
            "found": round(sum(bool(x["found"]) for x in r) / len(r), 3),
        }

    return {"all": rates(rows), **{cat: rates(r) for cat, r in sorted(by.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["signals", "refusal", "quality"])
    parser.add_argument(
        "--data-dir", type=Path, default=CACHE / "eval-data", help="where enclave eval built the indexes"
    )
    parser.add_argument("--limit", type=int, default=None, help="quality: first N questions only")
    parser.add_argument("--answerable", type=int, default=30, help="refusal: answerable questions to sample")
    parser.add_argument("--calibration", action="store_true", help="refusal: the calibration questions, not REPORT")
    parser.add_argument(
        "--min-support",
        type=float,
        default=0.0,
        help="share of the answer's terms that must occur in the sources",
    )
    args = parser.parse_args()
    settings = Settings(data_dir=args.data_dir)  # type: ignore[call-arg]
    started = time.time()
    if args.what == "signals":
        result = run_signals(settings)
    elif args.what == "refusal":
        result = run_refusal(settings, args.answerable, not args.calibration, args.min_support)
    else:
        result = run_quality(settings, args.limit, args.min_support)
    result["seconds"] = round(time.time() - started)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"eval-answers-{args.what}{'-calibration' if args.calibration else ''}.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result.get("summary", {}), indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

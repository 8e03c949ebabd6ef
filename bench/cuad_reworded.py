"""CUAD dev with its questions reworded: does retrieval hold when a lawyer asks in other words?

The 581 dev questions come from 15 templates ("Which jurisdiction's law governs the <agreement>
between <A> ("a"); <B> ("b")?"). This bench keeps each question's contract and judged clause and
asks it again with a template written for this bench (never scored against before it was fixed) and
the contract named the way a person would: "the marketing affiliate agreement between Birch First
Global Investments Inc. and Mount Kowledge Holdings Inc." (lower-case title, no defined short names,
"and" instead of ";"). Both sets run side by side on the same index (the one ``enclave eval`` builds
under ``<data dir>/eval``), without document focus, with it, and with it embedding the ask
(``ENCLAVE_RETRIEVAL__FOCUS_ASK_EMBEDDING``). It is no held-out contract set (the
contracts and clauses are dev's), but it shows how much of the dev figure rests on the templates'
wording. A third wording, ``TUNING`` (other templates; the contract named three ways: lower-case title
and parties, "our <title> with <last party>", title "signed by" the parties), is the set the focused
search's feedback settings were chosen on (``service.retrieval.FEEDBACK_*``); the reworded set never was.

    ENCLAVE_DATA_DIR=bench/.cache/eval-data ENCLAVE_EMBEDDER__PRECISION=bf16 .venv/bin/python -m bench.cuad_reworded
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.common import DATA, format_table, say, write_json
from ingest.config import Settings
from ingest.runtime import make_embedder
from service.evaluation.corpus_index import open_eval_index
from service.evaluation.datasets import load_dataset
from service.evaluation.runner import evaluate

CUAD = DATA / "cuad"
# the dev templates' words around "the <agreement> between <parties>", per category
REFERENCE = re.compile(
    r"\bthe (?P<title>(?:(?!\bthe\b)[^;])+?) between (?P<parties>.+?)"
    r"(?:\s(?:expire|renew after|from renewing|without|grant|impose|if a party|for convenience)\b.*"
    r"|, and at what amount\?|\?)$"
)
REWORDED = {
    "Governing Law": "Under {ref}, which state's laws apply to disputes?",
    "Expiration Date": "What is the end date of the initial term of {ref}?",
    "Renewal Term": "Does {ref} renew automatically, and for how long?",
    "Notice Period To Terminate Renewal": (
        "How many days before renewal must a party give notice so {ref} does not extend?"
    ),
    "Anti-Assignment": "Is consent required to transfer rights under {ref} to a third party?",
    "Cap On Liability": "What is the most either party can be liable for under {ref}?",
    "Audit Rights": "May a party inspect the other's books and records under {ref}?",
    "License Grant": "Which rights or licenses does {ref} give?",
    "Warranty Duration": "For what period are warranties given in {ref}?",
    "Exclusivity": "Is either party bound to deal only with the other under {ref}?",
    "Change Of Control": "What does {ref} say about a merger or acquisition of a party?",
    "Non-Compete": "Does {ref} keep a party from competing?",
    "Post-Termination Services": "Which duties continue once {ref} ends?",
    "Termination For Convenience": "Can {ref} be ended at will, without cause?",
    "Insurance": "What insurance coverage does {ref} require?",
}

TUNING = {
    "Governing Law": "What choice of law does {ref} make?",
    "Expiration Date": "How long is the term of {ref} and when does it end?",
    "Renewal Term": "Is there an extension or renewal period in {ref}?",
    "Notice Period To Terminate Renewal": "What is the deadline for a non-renewal notice in {ref}?",
    "Anti-Assignment": "Are there restrictions on assigning {ref}?",
    "Cap On Liability": "Does {ref} limit damages, and to what maximum?",
    "Audit Rights": "Who can audit whom under {ref}?",
    "License Grant": "What intellectual property may a party use under {ref}?",
    "Warranty Duration": "How long is the warranty period in {ref}?",
    "Exclusivity": "Does {ref} give anyone exclusive rights?",
    "Change Of Control": "Can {ref} be terminated if one party is acquired?",
    "Non-Compete": "Is there a non-competition covenant in {ref}?",
    "Post-Termination Services": "What must the parties do after {ref} terminates or expires?",
    "Termination For Convenience": "Can a party walk away from {ref} without a reason, on notice?",
    "Insurance": "Which policies and coverage limits must be carried under {ref}?",
}


# how the tuning wording names the contract of its i-th question: REFERENCE_FORMS[i % 3]
REFERENCE_FORMS = (
    "the <title> between <two parties>",
    "our <title> with <last party>",
    "the <Title> signed by <parties>",
)


# each wording is asked three ways: without document focus, with it (the default), and with focus embedding
# the ask (``ENCLAVE_RETRIEVAL__FOCUS_ASK_EMBEDDING``, chosen on the tuning wording and dev)
RUNS = (("no focus", False, False), ("focus", True, False), ("focus + ask embedding", True, True))


def tuning(text: str, category: str, i: int) -> str | None:
    """The ``i``-th question in the tuning wording, or None where its contract reference cannot be read."""
    match = REFERENCE.search(re.sub(r"\s*\([^()]*\)", "", text))
    if match is None or category not in TUNING:
        return None
    names = [p.strip(" ;,") for p in match["parties"].split(";") if p.strip(" ;,")]
    title = match["title"]
    refs = (
        f"the {title.lower()} between {' and '.join(names[:2])}",
        f"our {title.lower()} with {names[-1]}",
        f"the {title} signed by {' and '.join(names[:2])}",
    )
    return TUNING[category].format(ref=refs[i % 3])


def reworded(text: str, category: str) -> str | None:
    """The question in this bench's wording, or None where its contract reference cannot be read."""
    match = REFERENCE.search(re.sub(r"\s*\([^()]*\)", "", text))  # the defined short names go
    if match is None or category not in REWORDED:
        return None
    parties = [p.strip(" ;,") for p in match["parties"].split(";")]
    names = [p for p in parties if p]
    joined = " and ".join(names) if len(names) <= 2 else ", ".join(names[:-1]) + " and " + names[-1]
    return REWORDED[category].format(ref=f"the {match['title'].lower()} between {joined}")


def reworded_dataset(root: Path, wording: str = "reworded") -> tuple[Path, int]:
    """A copy of CUAD's dev split under ``root/<wording>/cuad`` (contracts linked, so the index is shared) with
    the questions reworded (``wording``: "reworded" or "tuning"); returns the directory and how many questions
    could not be reworded (left out)."""
    target = root / wording / "cuad"
    target.mkdir(parents=True)
    (target / "contracts").symlink_to(CUAD / "contracts")
    shutil.copyfile(CUAD / "qrels-spans-dev.jsonl", target / "qrels-spans-dev.jsonl")
    rows, skipped = [], 0
    for i, line in enumerate((CUAD / "queries-dev.jsonl").read_text().splitlines()):
        query = json.loads(line)
        text = (
            reworded(query["text"], query["category"])
            if wording == "reworded"
            else tuning(query["text"], query["category"], i)
        )
        if text is None:
            skipped += 1
            continue
        rows.append(json.dumps(query | {"text": text}))
    (target / "queries-dev.jsonl").write_text("\n".join(rows) + "\n")
    return target, skipped


def _per_query(values: dict[str, list[Any]]) -> dict[str, dict[str, float]]:
    ids = values.pop("ids")
    return {qid: {metric: series[i] for metric, series in values.items()} for i, qid in enumerate(ids)}


def breakdown(by_query: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """With focus: span recall@10 and the share of questions whose first result is from the judged contract
    (``doc_hit@1``), per way the tuning wording names the contract (beside dev's wording of the same
    questions), and span recall@10 per kind of clause in each wording."""
    rows = [json.loads(line) for line in (CUAD / "queries-dev.jsonl").read_text().splitlines()]
    forms: dict[str, list[str]] = {form: [] for form in REFERENCE_FORMS}
    for i, row in enumerate(rows):
        forms[REFERENCE_FORMS[i % 3]].append(row["_id"])
    categories: dict[str, list[str]] = {}
    for row in rows:
        categories.setdefault(row["category"], []).append(row["_id"])

    def mean(wording: str, ids: list[str], metric: str) -> float | None:
        found = [by_query[wording][q][metric] for q in ids if q in by_query[wording]]
        return round(sum(found) / len(found), 3) if found else None

    by_form = {
        form: {"questions": len(ids)}
        | {f"{w} {m}": mean(w, ids, m) for w in ("tuning", "dev") for m in ("span_recall@10", "doc_hit@1")}
        for form, ids in forms.items()
    }
    by_category = {
        category: {"questions": len(ids)} | {w: mean(w, ids, "span_recall@10") for w in by_query}
        for category, ids in sorted(categories.items())
    }
    return {
        "tuning wording by how the contract is named (focus)": by_form,
        "span recall@10 by kind of clause (focus)": by_category,
    }


def main() -> None:
    settings = Settings()  # ENCLAVE_* from the environment: the data dir and precision of `enclave eval`
    embedder = make_embedder(settings)
    embedder.warm_up()
    results: dict[str, Any] = {}
    by_query: dict[str, dict[str, dict[str, float]]] = {}  # wording -> query id -> metric -> value, with focus
    with tempfile.TemporaryDirectory() as tmp:
        reworded_root, skipped = reworded_dataset(Path(tmp))
        tuning_root, _ = reworded_dataset(Path(tmp), "tuning")
        for wording, root in (("dev", CUAD), ("tuning", tuning_root), ("reworded", reworded_root)):
            dataset = load_dataset(root, "dev")
            say(f"{wording}: {len(dataset.queries)} questions")
            stack = open_eval_index(dataset, settings, embedder)
            try:
                for name, focus, embed_ask in RUNS:
                    report = evaluate(dataset, stack, "hybrid", focus=focus, per_query=focus, embed_ask=embed_ask)
                    if focus:
                        by_query[f"{wording} + ask" if embed_ask else wording] = _per_query(report.pop("per_query"))
                    results[f"{wording}, {name}"] = report
            finally:
                stack.close()
    keys = ("queries", "ndcg@10", "mrr@10", "span_recall@10", "recall@100", "latency_p50_ms")
    rows = [[name, *(report[k] for k in keys)] for name, report in results.items()]
    print(format_table(["questions, hybrid", *keys], rows))
    drop = results["dev, focus"]["span_recall@10"] - results["reworded, focus"]["span_recall@10"]
    print(f"span recall@10 dev - reworded, with focus: {drop:.3f} (goal <= 0.03); not reworded: {skipped}")
    ask = "focus + ask embedding"
    drop_ask = results[f"dev, {ask}"]["span_recall@10"] - results[f"reworded, {ask}"]["span_recall@10"]
    print(f"span recall@10 dev - reworded, {ask}: {drop_ask:.3f}")
    tuned = results["dev, focus"]["span_recall@10"] - results["tuning, focus"]["span_recall@10"]
    print(f"span recall@10 dev - tuning wording (feedback chosen on it), with focus: {tuned:.3f}")
    breakdowns = breakdown(by_query)
    for title, table in breakdowns.items():
        print(title)
        print(format_table(["", *next(iter(table.values()))], [[key, *row.values()] for key, row in table.items()]))
    templates = {"reworded": REWORDED, "tuning": TUNING}
    payload = {"skipped": skipped, "templates": templates, "reports": results, "breakdowns": breakdowns}
    path = write_json("eval-cuad-reworded", payload)
    say(f"wrote {path}")


if __name__ == "__main__":
    main()

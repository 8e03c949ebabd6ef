"""Can an answer be trusted? CUAD contracts ingested through the API, questions asked over HTTP.

    .venv/bin/python -m bench.answer_trust                       # default mode: the figures of issue 13
    .venv/bin/python -m bench.answer_trust --modes extractive,generative,auto
    .venv/bin/python -m bench.answer_trust calibrate              # sentence-support thresholds (not reported sets)

Corpus: the 17 contracts of the first 40 CUAD dev short-answer questions (``answers-dev.jsonl``) plus 8
more (those that the held-out "absent fact" questions of ``bench/refusal_questions.py`` ask about,
then calibration ones), uploaded with ``POST /v1/documents`` to a real ``enclave serve``. Per answer
mode, each question goes through ``POST /v1/query`` and is judged from the response alone:

- answered: not refused; cites: at least one citation marked ``cited``;
- fully supported: every salient token of the answer (number, date, duration, capitalised name,
  section reference; normalised) is in the question or in the text of the supplied sources;
- contains: CUAD's short answer is in the answer (lenient: "thirty (30) days" = "30 days");
- ceiling: CUAD's short answer is in the supplied sources' text (what retrieval made possible);
- refusal: the 30 held-out unanswerable questions refused; answer rate on 20 held-out answerable ones.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

from bench import answer_match
from bench.common import CACHE, DATA, format_table, percentiles, say, write_json
from bench.refusal_questions import CALIBRATION, REPORT
from bench.server import Keys, ServeProcess

CUAD = DATA / "cuad"
GOLD_QUESTIONS = 40
OTHER_CONTRACTS = 8
ANSWERABLE = 20
WORK = CACHE / "answer-trust"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Corpus:
    """The questions, their contracts and the held-out/calibration splits, all derived from the data files."""

    def __init__(self) -> None:
        self.queries = {q["_id"]: q["text"] for q in _jsonl(CUAD / "queries-dev.jsonl")}
        self.doc_of = {r["query_id"]: r["doc"] for r in _jsonl(CUAD / "qrels-spans-dev.jsonl")}
        self.gold = _jsonl(CUAD / "answers-dev.jsonl")[:GOLD_QUESTIONS]
        first = list(dict.fromkeys(self.doc_of[g["query_id"]] for g in self.gold))
        absent = [self.contract_named(q) for q in REPORT["absent_fact"] + CALIBRATION["absent_fact"]]
        others = [d for d in dict.fromkeys(absent) if d and d not in first][:OTHER_CONTRACTS]
        self.contracts = first + others
        gold_ids = {g["query_id"] for g in self.gold}
        about = [q for q, d in self.doc_of.items() if d in self.contracts and q not in gold_ids]
        self.answerable_report = about[1::2][:ANSWERABLE]
        self.answerable_calibration = about[0::2]

    def contract_named(self, question: str) -> str | None:
        """The contract a question names: the one whose dev questions share most of its capitalised words."""
        names = set(re.findall(r"\b[A-Z][\w.&-]+", question)) - {"What", "Which", "How", "When", "Who", "The"}
        best, score = None, 1
        for qid, text in self.queries.items():
            overlap = len(names & set(re.findall(r"\b[A-Z][\w.&-]+", text)))
            if overlap > score and qid in self.doc_of:
                best, score = self.doc_of[qid], overlap
        return best


def ingest(server: ServeProcess, corpus: Corpus) -> None:
    """Upload every contract not yet in the server's data directory and wait until all are ready."""
    headers = server.headers(server.keys.dev)
    have = {
        d["filename"]
        for d in httpx.get(f"{server.url}/v1/documents?limit=100", headers=headers, timeout=60).json()["documents"]
    }
    pending = []
    for name in corpus.contracts:
        if name in have:
            continue
        files = {"file": (name, (CUAD / "contracts" / name).read_bytes(), "text/plain")}
        response = httpx.post(
            f"{server.url}/v1/documents", headers=headers, files=files, data={"collection": "contracts"}, timeout=120
        )
        response.raise_for_status()
        pending.append(response.json()["document_id"])
    say(f"  {len(pending)} contracts uploaded, {len(corpus.contracts) - len(pending)} already there")
    deadline = time.monotonic() + 3600
    while pending and time.monotonic() < deadline:
        status = httpx.get(f"{server.url}/v1/documents/{pending[0]}", headers=headers, timeout=60).json()
        if status["status"] == "failed":
            raise RuntimeError(f"ingest failed: {status['error']}")
        if status["status"] == "ready":
            pending.pop(0)
        else:
            time.sleep(1)


def ask(server: ServeProcess, question: str, texts: dict[str, str]) -> dict[str, Any]:
    """One question over HTTP, judged from the response (``texts``: document id → its text)."""
    started = time.perf_counter()
    response = httpx.post(
        f"{server.url}/v1/query", headers=server.headers(server.keys.dev), json={"query": question}, timeout=600
    )
    seconds = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    sources = "\n".join(_source_text(c, texts) for c in body["citations"])
    answer = body["answer"] if body["found"] else ""
    return {
        "question": question,
        "found": body["found"],
        "answer": body["answer"],
        "seconds": round(seconds, 3),
        "cites": any(c["cited"] for c in body["citations"]),
        "grounding": body.get("grounding"),
        "unsupported_removed": body.get("unsupported_removed", 0),
        "unsupported": unsupported_tokens(answer, question, sources) if body["found"] else [],
        "sources": sources,
    }


def _source_text(citation: dict[str, Any], texts: dict[str, str]) -> str:
    text = texts.get(citation["document_id"], "")
    start = citation.get("chunk_start", citation["start"])
    end = citation.get("chunk_end", citation["end"])
    return text[start:end] if text else citation["snippet"]


def unsupported_tokens(answer: str, question: str, sources: str) -> list[str]:
    """Salient tokens of the answer found neither in the question nor in the supplied sources."""
    from service.answering.salient import claims, unsupported

    text = re.sub(r"\[\d+(?:,\s*\d+)*\]", " ", answer)
    return unsupported(claims(text), f"{question}\n{sources}")


def document_texts(server: ServeProcess) -> dict[str, str]:
    """Document id → text (plain-text contracts are stored byte-exact, so offsets index the file)."""
    listing = httpx.get(
        f"{server.url}/v1/documents?limit=100", headers=server.headers(server.keys.dev), timeout=60
    ).json()["documents"]
    return {
        d["id"]: (CUAD / "contracts" / d["filename"]).read_text(encoding="utf-8")
        for d in listing
        if (CUAD / "contracts" / d["filename"]).exists()
    }


def run_mode(server: ServeProcess, corpus: Corpus, texts: dict[str, str]) -> dict[str, Any]:
    rows = []
    for item in corpus.gold:
        row = ask(server, corpus.queries[item["query_id"]], texts)
        answer = row["answer"] if row["found"] else ""
        row.update(
            query_id=item["query_id"],
            gold=item["answer"],
            contains=answer_match.lenient_match(answer, item["answer"]),
            ceiling=answer_match.lenient_match(row["sources"], item["answer"]),
        )
        rows.append(row)
        say(f"  {len(rows):>2} {row['contains']!s:<5} {item['answer']!r:<22} {answer[:100]!r}")
    refusal = {kind: [ask(server, q, texts) for q in questions] for kind, questions in REPORT.items()}
    answerable = [ask(server, corpus.queries[q], texts) for q in corpus.answerable_report]
    return {
        "summary": summarise(rows, refusal, answerable),
        "rows": _slim(rows),
        "refusal_rows": {k: _slim(v) for k, v in refusal.items()},
        "answerable_rows": _slim(answerable),
    }


def _slim(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "sources"} for r in rows]


def summarise(
    rows: list[dict[str, Any]], refusal: dict[str, list[dict[str, Any]]], answerable: list[dict[str, Any]]
) -> dict[str, Any]:
    answered = [r for r in rows if r["found"]]

    def share(items: list[dict[str, Any]], test: Any) -> float | None:
        return round(sum(bool(test(r)) for r in items) / len(items), 3) if items else None

    unanswerable = [r for group in refusal.values() for r in group]
    return {
        "questions": len(rows),
        "answered": share(rows, lambda r: r["found"]),
        "contains_cuad_answer": share(rows, lambda r: r["contains"]),
        "answered_that_cite": share(answered, lambda r: r["cites"]),
        "answered_fully_supported": share(answered, lambda r: not r["unsupported"]),
        "retrieval_ceiling": share(rows, lambda r: r["ceiling"]),
        "seconds_per_answer": percentiles([r["seconds"] for r in rows]),
        "unsupported_removed": sum(r["unsupported_removed"] for r in rows),
        "refusal_rate_unanswerable": share(unanswerable, lambda r: not r["found"]),
        "refusal_by_kind": {k: share(v, lambda r: not r["found"]) for k, v in refusal.items()},
        "answer_rate_answerable": share(answerable, lambda r: r["found"]),
    }


def run(modes: list[str], data_dir: Path) -> dict[str, Any]:
    corpus = Corpus()
    keys = Keys()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"contracts": corpus.contracts, "modes": {}}
    for mode in modes:
        say(f"mode {mode}")
        with ServeProcess(data_dir, keys, {"ENCLAVE_ANSWER__MODE": mode}) as server:
            ingest(server, corpus)
            results["modes"][mode] = run_mode(server, corpus, document_texts(server))
    return results


def calibrate(data_dir: Path) -> dict[str, Any]:
    """Best-sentence signals for calibration questions (answerable vs the CALIBRATION unanswerable ones), in process.

    The thresholds ``min_sentence_dense``/``min_sentence_lexical`` are chosen from these rows; the
    reported questions (the first 40, REPORT, the held-out answerable ones) are never used.
    """
    from ingest.config import Settings
    from ingest.runtime import build_components
    from service.answering.answerer import Answerer
    from service.answering.prompt import has_evidence
    from service.auth import Principal
    from service.schemas import QueryRequest

    corpus = Corpus()
    settings = Settings(data_dir=data_dir)  # type: ignore[call-arg]
    components = build_components(settings)
    answerer = Answerer(settings, components, generator=None)  # type: ignore[arg-type]
    principal = Principal(tenant=settings.default_tenant, subject="calibrate", roles=("admin",), auth_method="local")

    def signals(question: str) -> dict[str, Any]:
        found = answerer.retrieve(principal, QueryRequest(query=question))
        prepared = answerer.prepare(question, found)
        best = prepared.ranked[0] if prepared.ranked else None
        return {
            "question": question,
            "kind": prepared.question.kind,
            "parties": prepared.party_coverage,
            "gate": has_evidence(found.retrieved, settings.retrieval.min_dense_score),
            "dense": best.dense if best else None,
            "lexical": best.lexical if best else None,
            "value": best.value if best else None,
        }

    try:
        rows = {
            "answerable": [signals(corpus.queries[q]) for q in corpus.answerable_calibration],
            **{k: [signals(q) for q in v] for k, v in CALIBRATION.items()},
        }
    finally:
        components.close()
    return {"rows": rows, "sweep": sweep(rows)}


def sweep(rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Answer rate (calibration answerable) and refusal rate (CALIBRATION unanswerable) per threshold set.

    The rule is the answerer's: the retrieval gate, then parties found (when named), then the best
    sentence close enough and holding the ask's words or value, or very close.
    """
    answerable = rows["answerable"]
    unanswerable = [r for k, v in rows.items() if k != "answerable" for r in v]
    out = []
    for parties in (0.0, 0.5):
        for dense in (0.25, 0.3, 0.35):
            for lexical in (0.0, 0.3, 0.5):
                for confident in (0.4, 0.5, 1.0):

                    def ok(
                        r: dict[str, Any],
                        p: float = parties,
                        d: float = dense,
                        lx: float = lexical,
                        c: float = confident,
                    ) -> bool:
                        if not r["gate"] or r["dense"] is None or (r["parties"] is not None and r["parties"] < p):
                            return False
                        return (r["dense"] >= d and (r["lexical"] >= lx or r["value"] is not None)) or r["dense"] >= c

                    out.append(
                        {
                            "min_party_coverage": parties,
                            "min_dense": dense,
                            "min_lexical": lexical,
                            "confident_dense": confident,
                            "answer_rate": round(sum(ok(r) for r in answerable) / len(answerable), 3),
                            "refusal_rate": round(sum(not ok(r) for r in unanswerable) / len(unanswerable), 3),
                        }
                    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", nargs="?", choices=["run", "calibrate"], default="run")
    parser.add_argument("--modes", default="extractive", help="comma-separated: extractive,generative,auto")
    parser.add_argument("--data-dir", type=Path, default=WORK / "data", help="reused between runs")
    parser.add_argument("--name", default="answer-trust")
    args = parser.parse_args()
    started = time.time()
    if args.what == "calibrate":
        result = calibrate(args.data_dir)
        print(format_table(list(result["sweep"][0]), [list(r.values()) for r in result["sweep"]]))
        name = f"{args.name}-calibration"
    else:
        result = run(args.modes.split(","), args.data_dir)
        heads = ["mode", "answered", "contains", "cite", "supported", "ceiling", "p50 s", "refusal", "answerable"]
        table = [
            [
                m,
                s["answered"],
                s["contains_cuad_answer"],
                s["answered_that_cite"],
                s["answered_fully_supported"],
                s["retrieval_ceiling"],
                s["seconds_per_answer"]["p50"],
                s["refusal_rate_unanswerable"],
                s["answer_rate_answerable"],
            ]
            for m, r in result["modes"].items()
            for s in [r["summary"]]
        ]
        print(format_table(heads, table))
        name = args.name
    result["seconds"] = round(time.time() - started)
    say(f"wrote {write_json(name, result)}")


if __name__ == "__main__":
    main()

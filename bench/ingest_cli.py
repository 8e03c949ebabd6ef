"""``enclave ingest`` as a new user runs it, start-up included, next to the bare PyTorch embedder, in one run.

* enclave ingest: ``.venv/bin/enclave ingest DIR`` in a child process on a fresh data directory,
  timed by the wall clock from launch to exit: interpreter and model start-up, parsing, redaction,
  chunking, embedding, index and rows. Its chunks are counted in the store afterwards.
* bare embedder: sentence-transformers' MiniLM as its defaults give it (fp32), embedding the same
  number of 200-token windows of the same texts in batches of 64, model already loaded: the number
  a user would compare against.

Rounds alternate between the two so a busy machine slows both alike; the best round of each counts.

    .venv/bin/python -m bench.ingest_cli                      # 8 CUAD contracts, 2 rounds
    .venv/bin/python -m bench.ingest_cli --contracts 20 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import DATA, format_table, ratio, say, write_json

REPO = Path(__file__).resolve().parents[1]
WINDOW = 200


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contracts", type=int, default=8, help="CUAD plain-text contracts (evenly spaced of 510)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--name", default="ingest-cli", help="results file name (bench/results/<name>.json)")
    return p.parse_args(argv)


def contracts(n: int) -> list[Path]:
    found = sorted((DATA / "cuad" / "contracts").glob("*.txt"))
    step = max(1, len(found) // n)
    return found[::step][:n]


def run_cli(files: list[Path], work: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall-clock seconds of ``enclave ingest`` on a fresh data directory, and the chunks it stored."""
    source, data = work / "in", work / "data"
    shutil.rmtree(work, ignore_errors=True)
    source.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, source / path.name)
    started = time.perf_counter()
    subprocess.run(
        [str(REPO / ".venv" / "bin" / "enclave"), "ingest", str(source)],
        check=True,
        env=env | {"ENCLAVE_DATA_DIR": str(data)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - started
    with sqlite3.connect(data / "enclave.db") as db:
        chunks = int(db.execute("SELECT count(*) FROM chunk").fetchone()[0])
    return seconds, chunks


def windows(files: list[Path], tokenizer: Any, count: int) -> list[str]:
    """``count`` consecutive 200-token windows of the files' text (decoded back to text)."""
    out: list[str] = []
    for path in files:
        ids = tokenizer(path.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
        out += [tokenizer.decode(ids[i : i + WINDOW]) for i in range(0, len(ids), WINDOW)]
    while len(out) < count:
        out += out
    return out[:count]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    # sentence-transformers itself, not Enclave's embedder (which runs MiniLM on transformers alone)
    from ingest.embedding.sentence_transformers_embedder import load_sentence_transformer, packaged_model_path

    files = contracts(args.contracts)
    bare = load_sentence_transformer(packaged_model_path())
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")} | {"DO_NOT_TRACK": "1"}
    cli_runs: list[tuple[float, int]] = []
    bare_runs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="enclave-ingest-cli-") as tmp:
        for round_number in range(args.rounds):
            cli_runs.append(run_cli(files, Path(tmp) / "run", env))
            texts = windows(files, bare.tokenizer, cli_runs[-1][1])
            started = time.perf_counter()
            for i in range(0, len(texts), 64):
                bare.encode(texts[i : i + 64], batch_size=64, normalize_embeddings=True, show_progress_bar=False)
            bare_runs.append(time.perf_counter() - started)
            say(
                f"round {round_number + 1}: enclave ingest {cli_runs[-1][1]} chunks in {cli_runs[-1][0]:.1f} s; "
                f"bare fp32 embedder {len(texts)} windows in {bare_runs[-1]:.1f} s"
            )
    cli_s, chunks = min(cli_runs)
    bare_s = min(bare_runs)
    result = {
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "files": [p.name for p in files],
        "chunks": chunks,
        "enclave_ingest_s": round(cli_s, 2),
        "enclave_ingest_chunks_per_s": round(chunks / cli_s, 1),
        "bare_fp32_embedder_s": round(bare_s, 2),
        "bare_fp32_embedder_chunks_per_s": round(chunks / bare_s, 1),
        "ratio_enclave_ingest_to_bare": ratio(chunks / cli_s, chunks / bare_s),
        "rounds": {"enclave_ingest_s": [round(s, 2) for s, _ in cli_runs], "bare_s": [round(s, 2) for s in bare_runs]},
        "python": sys.version.split()[0],
    }
    print(
        format_table(
            ["run", "chunks", "seconds", "chunks/s"],
            [
                [
                    "enclave ingest (start-up included)",
                    chunks,
                    result["enclave_ingest_s"],
                    result["enclave_ingest_chunks_per_s"],
                ],
                [
                    "bare PyTorch embedder, fp32, loaded",
                    chunks,
                    result["bare_fp32_embedder_s"],
                    result["bare_fp32_embedder_chunks_per_s"],
                ],
                ["ratio (target >= 1)", "", "", result["ratio_enclave_ingest_to_bare"]],
            ],
        )
    )
    say(f"wrote {write_json(args.name, result)}")
    return result


if __name__ == "__main__":
    main()

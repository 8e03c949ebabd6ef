"""Dense embedders side by side: PyTorch MiniLM in fp32 and bf16 (the default: bf16 weights with linear layers
on oneDNN's prepacked weights, run by the fused BERT pass; before it, the same layers run by transformers' own
pass, bf16 weights alone and, earlier, fp32 weights under bf16 autocast), and its ONNX Runtime export (fp32,
int8), on the same texts.

For each backend, in its own child process (so the resident memory is its own): load time, peak
RSS, chunks per second over the same real chunks (CUAD and SciFact windows of 60-150 words, about
80-200 MiniLM tokens, embedded in batches of 64 as the pipeline does), and the vectors. Rounds
alternate between backends so a busy machine slows all of them alike. Then the cosine between
each ONNX vector and the PyTorch vector of the same text: minimum, 1st, 5th percentile, median.

    .venv/bin/python -m bench.embedders                    # 512 chunks, 3 rounds (~5 min on 2 cores)
    .venv/bin/python -m bench.embedders --chunks 128 --rounds 1
    .venv/bin/python -m bench.embedders --batch 16 --backends \\
        torch-fp32,torch-bf16,torch-bf16-unpacked,torch-bf16-autocast  # the PyTorch paths, the pipeline's batch
    .venv/bin/python -m bench.embedders --batch 16 --backends torch-fp32,torch-bf16,torch-bf16-unfused
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import format_table, load_sources, ratio, sample_chunks, say, write_json

BACKENDS = (
    "torch-fp32",
    "torch-bf16",
    "torch-bf16-unfused",
    "torch-bf16-unpacked",
    "torch-bf16-autocast",
    "onnx-fp32",
    "onnx-int8",
)
ONNX = [b for b in BACKENDS if b.startswith("onnx")]
REFERENCE = "torch-fp32"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3, help="timed passes per backend (the best one counts)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--cache-dir", type=Path, default=Path("/tmp/enclave-bench/models"), help="ONNX exports")
    p.add_argument("--name", default="embedders", help="results file name (bench/results/<name>.json)")
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated subset of " + ", ".join(BACKENDS))
    p.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    p.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


class Autocast:
    """The bf16 passages before bf16 weights: the fp32 model under CPU autocast to bfloat16."""

    def __init__(self, batch: int) -> None:
        from ingest.embedding.mean_pooling import MeanPoolingEncoder
        from ingest.embedding.sentence_transformers_embedder import packaged_model_path

        self.encoder, self.batch = MeanPoolingEncoder(packaged_model_path()), batch

    def warm_up(self) -> None:
        pass

    def embed_passages(self, texts: list[str]) -> Any:
        from ingest.embedding.sentence_transformers_embedder import torch_autocast

        with torch_autocast(True):
            return self.encoder.encode(list(texts), self.batch)


class Unpacked:
    """bf16 weights with every linear layer left as PyTorch's own (no oneDNN prepacking)."""

    def __init__(self, batch: int) -> None:
        from ingest.embedding.mean_pooling import MeanPoolingEncoder
        from ingest.embedding.sentence_transformers_embedder import packaged_model_path

        self.encoder, self.batch = MeanPoolingEncoder(packaged_model_path()).in_bf16(), batch

    def warm_up(self) -> None:
        pass

    def embed_passages(self, texts: list[str]) -> Any:
        return self.encoder.encode(list(texts), self.batch)


class Unfused(Unpacked):
    """The default's prepacked bf16 layers run by transformers' own BERT pass (not the fused one)."""

    def __init__(self, batch: int) -> None:
        from ingest.embedding.mean_pooling import MeanPoolingEncoder
        from ingest.embedding.sentence_transformers_embedder import packaged_model_path

        packed = MeanPoolingEncoder(packaged_model_path()).packed_bf16()
        if packed is None:
            raise SystemExit("this torch build has no prepacked oneDNN linear layers")
        packed.fused = None
        self.encoder, self.batch = packed, batch


def make(backend: str, cache_dir: Path, batch: int) -> Any:
    from ingest.embedding.onnx_embedder import OnnxEmbedder
    from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder

    if backend == "torch-bf16-autocast":
        return Autocast(batch)
    if backend == "torch-bf16-unpacked":
        return Unpacked(batch)
    if backend == "torch-bf16-unfused":
        return Unfused(batch)
    if backend.startswith("torch"):
        return SentenceTransformerEmbedder(batch_size=batch, precision="bf16" if backend.endswith("bf16") else "fp32")
    return OnnxEmbedder(cache_dir, precision="int8" if backend.endswith("int8") else "fp32", batch_size=batch)


def child(args: argparse.Namespace) -> None:
    """One backend: load, one pass over the texts (vectors kept), then time one more pass."""
    texts: list[str] = json.loads(args.texts.read_text())
    started = time.perf_counter()
    embedder = make(args.child, args.cache_dir, args.batch)
    embedder.warm_up()
    embedder.embed_passages(texts[:8])
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    vectors = np.array(embedder.embed_passages(texts), dtype=np.float32)
    seconds = time.perf_counter() - started
    np.save(args.out.with_suffix(".npy"), vectors)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.write_text(json.dumps({"load_s": load_s, "seconds": seconds, "peak_rss_mb": rss_mb}))


def run_child(backend: str, texts_file: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.embedders", "--child", backend, "--texts", str(texts_file)]
    command += ["--out", str(out), "--cache-dir", str(args.cache_dir), "--batch", str(args.batch)]
    subprocess.run(command, check=True)
    found: dict[str, Any] = json.loads(out.read_text())
    return found


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        child(args)
        return {}
    texts = [c.text for c in sample_chunks(load_sources(max_abstracts=2000), args.chunks, seed=17)]
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    chosen = [b for b in BACKENDS if b in args.backends.split(",")]
    if REFERENCE not in chosen:
        raise SystemExit(f"--backends must include {REFERENCE}: every cosine is taken against it")
    for backend in [b for b in ONNX if b in chosen]:  # export once, outside the timed runs
        make(backend, args.cache_dir, args.batch).warm_up()
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in chosen}
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        vectors: dict[str, np.ndarray] = {}
        for round_number in range(args.rounds):
            for backend in chosen:
                out = Path(tmp) / f"{backend}-{round_number}.json"
                runs[backend].append(run_child(backend, texts_file, out, args))
                vectors[backend] = np.load(out.with_suffix(".npy"))
                say(f"round {round_number + 1}: {backend} {len(texts) / runs[backend][-1]['seconds']:.1f} chunks/s")
    result = _result(args, texts, runs, vectors)
    print(_table(result))
    say(f"wrote {write_json(args.name, result)}")
    return result


def _result(
    args: argparse.Namespace, texts: list[str], runs: dict[str, list[dict[str, Any]]], vectors: dict[str, np.ndarray]
) -> dict[str, Any]:
    best = {b: min(r["seconds"] for r in rs) for b, rs in runs.items()}
    rate = {b: len(texts) / s for b, s in best.items()}
    out: dict[str, Any] = {"arguments": {k: str(v) for k, v in vars(args).items() if v is not None}, "backends": {}}
    for backend in runs:
        entry: dict[str, Any] = {
            "chunks_per_s": round(rate[backend], 1),
            "all_rounds_chunks_per_s": [round(len(texts) / r["seconds"], 1) for r in runs[backend]],
            "ratio_to_torch_fp32": ratio(rate[backend], rate[REFERENCE]),
            "load_s": round(min(r["load_s"] for r in runs[backend]), 2),
            "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs[backend])),
        }
        if backend != REFERENCE:
            cosine = (vectors[backend] * vectors[REFERENCE]).sum(axis=1)
            entry["cosine_to_torch_fp32"] = {
                "min": round(float(cosine.min()), 6),
                "p1": round(float(np.percentile(cosine, 1)), 6),
                "p5": round(float(np.percentile(cosine, 5)), 6),
                "median": round(float(np.median(cosine)), 6),
                "share_at_least_0_99": round(float((cosine >= 0.99).mean()), 4),
            }
        out["backends"][backend] = entry
    return out


def _table(result: dict[str, Any]) -> str:
    rows = []
    for backend, e in result["backends"].items():
        cos = e.get("cosine_to_torch_fp32", {})
        rows.append(
            [
                backend,
                e["chunks_per_s"],
                e["ratio_to_torch_fp32"],
                e["load_s"],
                e["peak_rss_mb"],
                cos.get("min", "1"),
                cos.get("p1", "1"),
                cos.get("median", "1"),
            ]
        )
    return format_table(
        ["embedder", "chunks/s", "x torch fp32", "load s", "peak RSS MB", "cos min", "cos p1", "cos median"], rows
    )


if __name__ == "__main__":
    main()

"""Tune retrieval on a training split: fusion, prefetch depth, BM25 parameters, chunk size.

Usage::

    .venv/bin/python -m bench.eval_tune ../shared/data/scifact --split train --grid fusion
    .venv/bin/python -m bench.eval_tune ../shared/data/scifact --split train --grid bm25
    .venv/bin/python -m bench.eval_tune ../shared/data/scifact --split train --grid chunking

Dense vectors are cached on disk by text hash (``bench/.cache/eval-vectors-*.npy``), so variants
that change only BM25 or fusion reuse them and a variant that changes the chunks embeds only the
texts it has not seen. Never tune on a test split: the README's figures come from ``enclave eval``
on the test split with the values chosen here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CACHE, RESULTS
from ingest.config import Settings  # noqa: E402  (bench.common sets the offline environment first)
from ingest.embedding.bm25_encoder import QdrantBm25Encoder  # noqa: E402
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder  # noqa: E402
from ingest.index.qdrant_edge_index import HybridConfig  # noqa: E402
from service.evaluation.corpus_index import open_eval_index  # noqa: E402
from service.evaluation.datasets import load_dataset  # noqa: E402
from service.evaluation.runner import evaluate  # noqa: E402


class CachingEmbedder:
    """A dense embedder whose vectors for texts seen before come from disk (tuning runs only)."""

    def __init__(self, inner: SentenceTransformerEmbedder, path: Path) -> None:
        self.inner = inner
        self.path = path
        self.model_name, self.dim, self.max_tokens = inner.model_name, inner.dim, inner.max_tokens
        self._rows: dict[str, int] = {}
        self._vectors: list[np.ndarray] = []
        self._unsaved = 0
        if path.with_suffix(".json").is_file():
            self._rows = json.loads(path.with_suffix(".json").read_text())
            self._vectors = list(np.load(path))

    def warm_up(self) -> None:
        self.inner.warm_up()

    @property
    def tokenizer(self) -> Any:
        return self.inner.tokenizer

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._rows}.items())
        if missing:
            fresh = self.inner.embed_passages([t for _, t in missing])
            for (key, _), vec in zip(missing, fresh, strict=True):
                self._rows[key] = len(self._vectors)
                self._vectors.append(np.asarray(vec, dtype=np.float32))
            self._unsaved += len(missing)
            if self._unsaved >= 4096:
                self.save()
        return [self._vectors[self._rows[k]].tolist() for k in keys]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_passages([text])[0]

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.save(self.path, np.stack(self._vectors) if self._vectors else np.zeros((0, self.dim), np.float32))
        self.path.with_suffix(".json").write_text(json.dumps(self._rows))
        self._unsaved = 0


@dataclass(frozen=True)
class Variant:
    name: str
    max_tokens: int = 200
    overlap: int = 24
    k1: float = 0.9
    b: float = 0.75
    avg_len: float = 150.0
    hybrid: HybridConfig = HybridConfig()


def grid(name: str) -> list[Variant]:
    base = Variant("base")
    if name == "fusion":
        return [
            replace(base, name=f"rrf k={k} w={w} d={d}", hybrid=HybridConfig("rrf", k, w[0], w[1], d))
            for k in (10, 30, 60, 100)
            for w in ((1.0, 1.0), (1.0, 1.5), (1.5, 1.0))
            for d in (50, 100, 300)
        ]
    if name == "fusion2":
        rrf = [
            replace(base, name=f"rrf k={k} w={w}", hybrid=HybridConfig("rrf", k, w[0], w[1], 100))
            for k in (2, 5, 10, 15, 20)
            for w in ((1.0, 1.0), (1.25, 1.0), (1.0, 1.25))
        ]
        return [*rrf, replace(base, name="dbsf", hybrid=HybridConfig(method="dbsf"))]
    if name == "bm25":
        return [
            replace(base, name=f"k1={k1} b={b} avg={avg}", k1=k1, b=b, avg_len=avg)
            for k1 in (0.9, 1.2, 1.5)
            for b in (0.4, 0.75, 0.9)
            for avg in (150.0,)
        ]
    if name == "chunking":
        return [
            replace(base, name=f"max={m} overlap={o}", max_tokens=m, overlap=o)
            for m, o in ((200, 24), (128, 24), (254, 32))
        ]
    return [base]


def run_variant(
    dataset_dir: Path, split: str, variant: Variant, embedder: CachingEmbedder, data_dir: Path, modes: Sequence[str]
) -> list[dict[str, Any]]:
    settings = Settings(
        data_dir=data_dir, chunking={"max_tokens": variant.max_tokens, "overlap_tokens": variant.overlap}
    )  # type: ignore[arg-type]
    dataset = load_dataset(dataset_dir, split)
    sparse = QdrantBm25Encoder(avg_len=variant.avg_len, k1=variant.k1, b=variant.b)
    stack = open_eval_index(dataset, settings, embedder, sparse=sparse, hybrid=variant.hybrid)  # type: ignore[arg-type]
    embedder.save()
    try:
        rows = []
        for mode in modes:
            report = evaluate(dataset, stack, mode)  # type: ignore[arg-type]
            rows.append(
                {
                    "variant": variant.name,
                    **asdict(variant),
                    **{k: v for k, v in report.items() if k != "index"},
                    "chunks": stack.stats.get("chunks"),
                }
            )
            print(_line(rows[-1]), flush=True)
        return rows
    finally:
        stack.close()


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['variant']:<28} {row['mode']:<7} nDCG@10 {row['ndcg@10']:.4f}  R@10 {row['recall@10']:.4f}  "
        f"R@100 {row['recall@100']:.4f}  MRR@10 {row['mrr@10']:.4f}  p50 {row['latency_p50_ms']:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--grid", default="base", choices=["base", "fusion", "fusion2", "bm25", "chunking"])
    parser.add_argument("--modes", default="hybrid")
    parser.add_argument("--data-dir", type=Path, default=CACHE / "eval-data")
    args = parser.parse_args()
    if args.split == "test":
        sys.exit("tune on a training split; the test split is for reporting only")
    inner = SentenceTransformerEmbedder()
    inner.warm_up()
    embedder = CachingEmbedder(inner, CACHE / f"eval-vectors-{args.dataset.resolve().name}.npy")
    started, rows = time.time(), []
    for variant in grid(args.grid):
        rows.extend(run_variant(args.dataset, args.split, variant, embedder, args.data_dir, args.modes.split(",")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"eval-tune-{args.dataset.resolve().name}-{args.grid}.json"
    out.write_text(
        json.dumps({"split": args.split, "seconds": round(time.time() - started), "rows": rows}, indent=1, default=str)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

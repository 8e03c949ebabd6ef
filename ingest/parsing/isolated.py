"""A parser that reads PDFs and office files in a child process, beside the embedder instead of under its GIL.

Parsing a PDF (pdfminer, inside ``unstructured``) is pure Python: in the worker's process it holds the GIL,
which the embedder's thread needs between every two torch operators, so the two barely overlapped (20 CUAD
PDFs, 461 pages: parse 21 s + embed 20 s = 40.5 s). Here the producer thread only waits on a socket while a
child process parses (``bench/ingest.py`` compares both parsers in one run). The child also keeps a crash
or an out-of-memory kill inside one document: that document fails with :class:`ParserStopped`, the next
one gets a fresh child.

Plain text, Markdown and CSV stay in this process: they are decoded, not parsed, and crossing the socket
would cost more than reading them. The child is a fresh interpreter (``python -m ingest.parsing.isolated``),
never a fork: the parent holds torch's and ONNX Runtime's thread pools, which a forked child would inherit
broken.
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ingest.errors import EnclaveError, IngestError
from ingest.parsing import sniff
from ingest.parsing.port import ParsedDocument, Parser
from ingest.parsing.unstructured_parser import UnstructuredParser

log = logging.getLogger(__name__)
IN_PROCESS = frozenset({sniff.TEXT, sniff.MARKDOWN, sniff.CSV})
ParserFactory = Callable[[], Parser]


class ParserStopped(IngestError):
    """The parser's child process ended while it read this document (a crash, or killed for memory).

    Retried (a new child, up to ``ENCLAVE_JOB_MAX_ATTEMPTS`` attempts): memory may have run short for another
    reason; a file that stops every child fails for good after the last attempt.
    """

    code = "parser_stopped"
    retryable = True


class IsolatedParser:
    """The ``Parser`` port over a child process running ``factory()`` (default :class:`UnstructuredParser`).

    ``factory`` must be picklable (a class or a module-level function): the child builds its own parser.
    One document is parsed at a time; callers on other threads wait their turn. ``warm_up`` starts the child
    and returns at once: the child loads its libraries while this process goes on, and a failure to load
    them is raised by the first ``parse`` that needs the child. ``close`` ends the child (it also ends with
    this process).
    """

    def __init__(self, factory: ParserFactory = UnstructuredParser) -> None:
        self._factory = factory
        self._local = UnstructuredParser()  # text, Markdown, CSV: no library to load for them
        self._lock = threading.Lock()
        self._child: _Child | None = None

    @property
    def child_pid(self) -> int | None:
        """The running child's process id (None before the first document that needs it, and after close)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    def warm_up(self) -> None:
        with self._lock:
            self._running()

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        """Parse one upload; see ``Parser``. :raises ParserStopped: the child ended while reading it."""
        if sniff.sniff_mime(data, filename) in IN_PROCESS:
            return self._local.parse(data, filename)
        with self._lock:
            return self._running().parse(data, filename)

    def close(self) -> None:
        with self._lock:
            if self._child is not None:
                self._child.stop()
                self._child = None

    def _running(self) -> _Child:
        if self._child is None or not self._child.alive:
            if self._child is not None:
                log.warning("parser child process %s ended (exit code %s); starting another", *self._child.ended)
            self._child = _Child(self._factory)
        return self._child


class _Child:
    """One child process and the socket to it; the caller serialises requests.

    A plain ``python -m`` subprocess rather than ``multiprocessing``: a spawned ``multiprocessing`` child
    re-imports the parent's main module, which runs again any script that builds components at module level.
    """

    def __init__(self, factory: ParserFactory) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno())], pass_fds=[theirs.fileno()], env=env
            )
        self._conn = Connection(ours.detach())
        self._stop = weakref.finalize(self, _end, self._process, self._conn)
        self._conn.send(("start", factory))
        self._warming = True

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    @property
    def ended(self) -> tuple[int, int | None]:
        return self._process.pid, self._process.returncode

    def parse(self, data: bytes, filename: str) -> ParsedDocument:
        try:
            if self._warming:
                self._warming = False
                self._reply()  # the warm-up's failure is this document's (it needs the libraries)
            self._conn.send(("parse", data, filename))
            result: ParsedDocument = self._reply()
            return result
        except (EOFError, OSError) as exc:
            code = _wait(self._process)
            raise ParserStopped(
                f"the parser process stopped while reading this file (exit code {code}: it crashed or was "
                "killed, often for memory); it is tried again in a new one. If this file keeps stopping it, "
                "save it anew (e.g. print to PDF) or split it, and upload that"
            ) from exc

    def _reply(self) -> Any:
        status, value = self._conn.recv()  # blocks without the GIL while the child works
        if status == "error":
            raise value
        return value

    def stop(self) -> None:
        self._stop()


def _wait(process: subprocess.Popen[bytes]) -> int | None:
    try:
        return process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


def _end(process: subprocess.Popen[bytes], conn: Connection) -> None:
    """End the child now: it holds nothing to save, and may be busy loading its libraries or parsing."""
    conn.close()
    if process.poll() is None:
        process.terminate()
        if _wait(process) is None:
            process.kill()
            _wait(process)


def _serve(conn: Connection) -> None:
    """The child: build the parser it is sent, then answer requests until the parent closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which then closes the socket
    parser: Parser | None = None
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        try:
            if request[0] == "start":
                parser = request[1]()
                parser.warm_up()
                reply: tuple[str, Any] = ("ok", None)
            elif parser is None:
                reply = ("error", RuntimeError("the parser process was asked to parse before it was started"))
            else:
                reply = ("ok", parser.parse(request[1], request[2]))
        except Exception as exc:  # noqa: BLE001 - sent to the parent, raised there for this document
            reply = ("error", _portable(exc))
        conn.send(reply)


def _portable(exc: Exception) -> Exception:
    """``exc`` when it crosses the pipe intact (Enclave's errors do), else a plain error that names it."""
    if isinstance(exc, EnclaveError):
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:  # noqa: BLE001 - replaced below
            pass
    return RuntimeError(f"the parser failed: {type(exc).__name__}: {exc}")


class _WithoutTorch(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` fail in the child. spaCy's thinc imports torch when it is installed (for models
    Enclave does not run) and ``transformers`` with it: 300 MB of the child's memory that no partitioner used
    here (fast PDF strategy, office formats, HTML, e-mail, Tesseract OCR) touches; thinc carries on without."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is not loaded in Enclave's parser process")


if __name__ == "__main__":
    sys.meta_path.insert(0, _WithoutTorch())
    _serve(Connection(int(sys.argv[1])))

"""The policy port over ``regopy`` (Microsoft's rego-cpp): Rego compiled in-process, evaluated per request.

Every ``*.rego`` file in the policies directory is compiled, with each listed JSON file as data
(``access.json`` → ``data.access``), into one bundle with two entrypoints. Evaluation takes well
under a millisecond. The files are re-checked at most every ``check_interval_s`` (size and mtime),
and on :func:`request_reload` (SIGHUP); a new version that does not compile is reported and the
previous bundle stays in force.

Values cross into Rego as one JSON term with ASCII escapes (``json.dumps``), the same encoding
``add_data`` uses: rego-cpp compares strings in their escaped form and prints them back unescaped
unless they came in escaped, so this keeps comparisons consistent and its output valid JSON.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _load_cxx_runtime_globally() -> None:
    """Load libstdc++ into the global scope before rego-cpp's library.

    rego-cpp brings its own ``operator new``/``delete`` (snmalloc). When its library is the first to
    pull in libstdc++, libstdc++'s internal allocations bind to that allocator, and C++ libraries
    loaded later (torch's protobuf) free them with glibc: a heap corruption that aborts the process
    ("double free or corruption") when ``import torch`` follows ``import regopy``.
    """
    with contextlib.suppress(OSError):
        ctypes.CDLL(ctypes.util.find_library("stdc++") or "libstdc++.so.6", mode=os.RTLD_GLOBAL)


_load_cxx_runtime_globally()

import regopy  # noqa: E402  (after the C++ runtime, see above)
from regopy import Bundle, Interpreter, LogLevel, RegoError  # noqa: E402

from ingest.policy_data import PolicyError  # noqa: E402
from service.policy.port import Decision, Entitlements, PolicyStatus, PrincipalFacts  # noqa: E402

log = logging.getLogger(__name__)
DECISION = "enclave/access/decision"
ENTITLEMENTS = "enclave/access/entitlements"
DATA_FILES = ("access.json",)
MAX_MEMOISED = 4096  # distinct (entrypoint, input) answers kept per policy revision
_RELOAD_REQUESTED = threading.Event()
_ERROR = re.compile(
    r"\(error \d+:(?P<file>[^|\n]*)\|(?P<offset>\d+)\|\d+\s*"
    r"\(errormsg \d+:(?P<msg>[^\n]*?)\)\s*$",
    re.M,
)


def request_reload() -> None:
    """Ask every engine in this process to recompile on its next evaluation (the SIGHUP handler)."""
    _RELOAD_REQUESTED.set()


@dataclass(frozen=True)
class _Compiled:
    bundle: Bundle
    runner: Interpreter
    revision: str
    loaded_at: str
    files: list[str]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _quiet() -> Interpreter:
    interpreter = Interpreter()
    interpreter.log_level = LogLevel.NONE  # rego-cpp prints compile errors to stdout otherwise
    return interpreter


class RegoPolicyEngine:
    """Compile once, evaluate per request, reload on change; see the module docstring."""

    def __init__(
        self, directory: Path, *, check_interval_s: float = 1.0, data_files: Sequence[str] = DATA_FILES
    ) -> None:
        self._dir = directory
        self._data_files = tuple(data_files)
        self._interval = check_interval_s
        self._lock = threading.Lock()
        self._compiled: _Compiled | None = None
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._checked_at = 0.0
        self._error: tuple[str, str] | None = None
        # Same input, same policy revision → same answer (the policies read no clock or randomness), so
        # answers are memoised per revision: most requests come from few principals (bench/profile_query).
        self._answers: dict[tuple[str, str], Any] = {}

    def warm_up(self) -> None:
        if self._compiled is None:
            self.reload()
        if self._compiled is None:
            reason = self._error[0] if self._error else "unknown error"
            raise PolicyError(f"the access policy in {self._dir} does not compile: {reason}")

    def decide(
        self,
        action: str,
        principal: PrincipalFacts,
        required_roles: Sequence[str],
        resource: Mapping[str, Any] | None = None,
    ) -> Decision:
        facts = {
            "action": action,
            "principal": dict(principal),
            "required_roles": list(required_roles),
            "resource": dict(resource or {}),
        }
        answer = self._evaluate(DECISION, facts)
        if not isinstance(answer, dict):
            return Decision(False, ("the access policy gave no decision; the operator should check policies/",))
        reasons = tuple(sorted(str(r) for r in answer.get("reasons") or ()))
        return Decision(answer.get("allow") is True, reasons)

    def entitlements(self, principal: PrincipalFacts) -> Entitlements:
        answer = self._evaluate(ENTITLEMENTS, {"principal": dict(principal)})
        if not isinstance(answer, dict):
            return Entitlements()
        return Entitlements(_strings(answer.get("classifications")), _strings(answer.get("excluded_groups")))

    def reload(self) -> PolicyStatus:
        with self._lock:
            self._reload_locked()
            return self._status_locked()

    def status(self) -> PolicyStatus:
        with self._lock:
            return self._status_locked()

    def _status_locked(self) -> PolicyStatus:
        current = self._compiled
        error, at = self._error or (None, None)
        if current is None:
            return PolicyStatus(None, None, [], error, at)
        return PolicyStatus(current.revision, current.loaded_at, current.files, error, at)

    def _evaluate(self, entrypoint: str, facts: Mapping[str, Any]) -> Any:
        term = json.dumps(facts, sort_keys=True)
        with self._lock:
            self._check_for_changes()
            current = self._compiled
            if current is None:
                return None
            if (entrypoint, term) in self._answers:
                return self._answers[(entrypoint, term)]
            try:
                current.runner.set_input_term(term)
                output = current.runner.query_bundle_entrypoint(current.bundle, entrypoint)
            except (RegoError, ValueError) as exc:  # ValueError: output that is not JSON
                log.error("policy evaluation failed entrypoint=%s error=%s", entrypoint, type(exc).__name__)
                return None
            answer = _first_expression(output)
            if len(self._answers) >= MAX_MEMOISED:
                self._answers.clear()
            self._answers[(entrypoint, term)] = answer
        return answer

    def _check_for_changes(self) -> None:
        now = time.monotonic()
        requested = _RELOAD_REQUESTED.is_set()
        if not requested and (self._interval <= 0 or now - self._checked_at < self._interval):
            return
        self._checked_at = now
        if requested or self._sources_fingerprint() != self._fingerprint:
            _RELOAD_REQUESTED.clear()
            self._reload_locked()

    def _sources(self) -> list[Path]:
        rego = sorted(self._dir.glob("*.rego"))
        return rego + [self._dir / name for name in self._data_files if (self._dir / name).is_file()]

    def _sources_fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        found = []
        for path in self._sources():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(found)

    def _reload_locked(self) -> None:
        fingerprint = self._sources_fingerprint()
        try:
            compiled = _compile(self._dir, self._sources())
        except PolicyError as exc:
            self._fingerprint = fingerprint  # report once per change, not on every request
            self._error = (exc.message, _now())
            log.warning("policy reload failed; the previous policy stays in force: %s", exc.message)
            return
        self._compiled, self._fingerprint, self._error = compiled, fingerprint, None
        self._answers.clear()
        log.info("policy loaded revision=%s files=%d", compiled.revision[:12], len(compiled.files))


def _first_expression(output: Any) -> Any:
    if not output.ok() or not output.results or not output.results[0].expressions:
        return None
    return output.results[0].expressions[0]


def _compile(directory: Path, sources: list[Path]) -> _Compiled:
    """:raises PolicyError: a file is missing, unreadable, not JSON, or does not compile."""
    texts = _read(directory, sources)
    if not any(name.endswith(".rego") for name in texts):
        raise PolicyError(f"no .rego files in {directory}; restore policies/access.rego")
    builder = _quiet()
    try:
        for name, text in texts.items():
            if name.endswith(".json"):
                builder.add_data_json(json.dumps({name.removesuffix(".json"): json.loads(text)}))
            else:
                builder.add_module(name, text)
        bundle = builder.build(None, [DECISION, ENTITLEMENTS])
    except RegoError as exc:
        raise PolicyError(_describe(str(exc), texts)) from exc
    except json.JSONDecodeError as exc:
        raise PolicyError(f"a data file in {directory} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    return _checked(bundle, texts)


def _read(directory: Path, sources: list[Path]) -> dict[str, str]:
    try:
        return {path.name: path.read_text(encoding="utf-8") for path in sources}
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"cannot read the policies in {directory}: {type(exc).__name__}") from exc


def _checked(bundle: Bundle, texts: Mapping[str, str]) -> _Compiled:
    """A bundle must answer both entrypoints with an object before it replaces the one in force."""
    if not bundle.ok():
        raise PolicyError("the policy bundle did not build")
    runner = _quiet()
    runner.set_input_term(json.dumps({"action": "", "principal": {"groups": [], "roles": []}, "required_roles": []}))
    for entrypoint in (DECISION, ENTITLEMENTS):
        output = runner.query_bundle_entrypoint(bundle, entrypoint)
        if not output.ok() or not output.results or not isinstance(_first(output), dict):
            raise PolicyError(f"the policy must define data.{entrypoint.replace('/', '.')} as an object")
    digest = hashlib.sha256(json.dumps(sorted(texts.items())).encode()).hexdigest()
    return _Compiled(bundle, runner, digest, _now(), sorted(texts))


def _first(output: Any) -> Any:
    expressions = output.results[0].expressions
    return expressions[0] if expressions else None


def _describe(raw: str, texts: Mapping[str, str]) -> str:
    """rego-cpp's error tree as ``file:line:column: message`` lines."""
    found = []
    for match in _ERROR.finditer(raw):
        name, offset = match["file"], int(match["offset"])
        source = texts.get(name, "")
        line = source.count("\n", 0, offset) + 1
        column = offset - (source.rfind("\n", 0, offset) + 1) + 1
        found.append(f"{name}:{line}:{column}: {match['msg']}")
    return "; ".join(found) or raw.strip()[:500]


def _strings(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(sorted(str(v) for v in values))


__all__ = ["RegoPolicyEngine", "request_reload", "regopy"]

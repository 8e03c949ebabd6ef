"""Process logging: one root handler, text or JSON lines, every record tagged with its request id.

``ENCLAVE_LOG_FORMAT=json`` gives one JSON object per line (``ts``, ``level``, ``logger``,
``message``, ``request_id``, ``trace_id``/``span_id`` inside a traced operation, ``exc_type`` and
``exception`` for errors) for a log shipper; ``text`` is for people. The request id comes from
the request-id middleware through a context variable, so records from the route, the retriever
and the generator client of one request share it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

from opentelemetry import trace

from ingest.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
SERVER_REQUEST_ID_HEADER = "X-Enclave-Request-ID"  # the server's own id, whatever the caller sent
_request_id: ContextVar[str | None] = ContextVar("enclave_request_id", default=None)
_server_request_id: ContextVar[str | None] = ContextVar("enclave_server_request_id", default=None)
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # 64: the audit trail's request_id column
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return _request_id.get()


def current_server_request_id() -> str | None:
    """The server's own id for the request being handled (never the caller's), if any."""
    return _server_request_id.get()


def new_server_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(incoming: str | None, fallback: str | None = None) -> str:
    """The caller's id when it is a plain token (so it cannot forge log lines), else ``fallback`` or a fresh one."""
    if incoming and _ACCEPTED_ID.fullmatch(incoming):
        return incoming
    return fallback or uuid.uuid4().hex


def bind_server_request_id(server_request_id: str | None) -> object:
    """Set the context's server-generated request id; returns a token for :func:`reset_server_request_id`."""
    return _server_request_id.set(server_request_id)


def reset_server_request_id(token: object) -> None:
    _server_request_id.reset(token)  # type: ignore[arg-type]


def bind_request_id(request_id: str | None) -> object:
    """Set the context's request id; returns a token for :func:`reset_request_id`."""
    return _request_id.set(request_id)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]


class RequestIdFilter(logging.Filter):
    """Stamps ``request_id`` (``-`` outside a request) on every record a handler emits."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; extra fields passed with ``extra={...}`` are kept."""

    _STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        entry.update(_trace_ids())
        entry.update({k: v for k, v in vars(record).items() if k not in self._STANDARD and not k.startswith("_")})
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _trace_ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class _EnclaveHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so configuring twice replaces it."""


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Install the one root handler (replacing an earlier one from here) at ``settings.log_level``."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _EnclaveHandler)]:
        root.removeHandler(old)
    handler = _EnclaveHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler

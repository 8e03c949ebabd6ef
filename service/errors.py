"""The one place where errors become HTTP responses, all in one envelope.

``{"error": {"message", "type", "param", "code"}}`` — the shape of vLLM's and OpenAI's APIs, so
portals parse every failure the same way.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import EnclaveError

log = logging.getLogger(__name__)

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
         413: "request_too_large", 415: "unsupported_media_type", 422: "invalid_request_error", 429: "rate_limit_error",
         503: "service_unavailable", 504: "timeout_error"}


def envelope(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    error = {"message": message, "type": TYPES.get(status, "server_error"), "param": param, "code": code}
    return JSONResponse(status_code=status, content={"error": error})


async def _enclave_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EnclaveError)
    return envelope(exc.status, exc.message, exc.code, exc.param)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(part) for part in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    param = ".".join(loc) or None
    return envelope(422, f"{param or 'request'}: {first.get('msg', 'invalid value')}", "invalid_request", param)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return envelope(exc.status_code, str(exc.detail), "http_error")


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error type=%s", type(exc).__name__)
    return envelope(500, "internal error; the operator can find details in the service log", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EnclaveError, _enclave_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

"""The one place where errors become HTTP responses, all in one envelope.

``{"error": {"message", "type", "param", "code"}}`` — the shape of vLLM's and OpenAI's APIs, so
portals parse every failure the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import EnclaveError

log = logging.getLogger(__name__)

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class ErrorBody(BaseModel):
    message: str = Field(description="what went wrong and what to do about it")
    type: str = Field(description="the error's class: invalid_request_error, rate_limit_error, …")
    param: str | None = Field(description="the request field at fault, when there is one")
    code: str = Field(description="stable, machine-readable error code")


class ErrorEnvelope(BaseModel):
    """The one shape of every error response."""

    error: ErrorBody


# Every route documents its errors with the envelope (and FastAPI's own 422 schema is replaced by it).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorEnvelope, "description": "the request was refused; `error.message` says why and what to do"},
    "5XX": {
        "model": ErrorEnvelope,
        "description": "Enclave or one of its components failed; retry if `type` is service_unavailable",
    },
}


def envelope(
    status: int, message: str, code: str, param: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    error = {"message": message, "type": TYPES.get(status, "server_error"), "param": param, "code": code}
    return JSONResponse(status_code=status, content={"error": error}, headers=headers)


async def _enclave_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EnclaveError)
    return envelope(exc.status, exc.message, exc.code, exc.param, getattr(exc, "headers", None))


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
    return envelope(exc.status_code, str(exc.detail), getattr(exc, "code", "http_error"), headers=exc.headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error type=%s", type(exc).__name__)
    return envelope(500, "internal error; the operator can find details in the service log", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EnclaveError, _enclave_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

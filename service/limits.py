"""What one caller may take: request body size (413) and request rate per principal (429).

The body limit is a pure ASGI middleware: a declared ``Content-Length`` over the limit is refused
before the body is read, and a body that streams in without one (chunked) is counted as it arrives
and refused as soon as it passes the limit. Multipart uploads get ``max_upload_bytes`` plus room for
the form's other fields; every other body (JSON) gets ``api.max_request_bytes``.

Rate limits are token buckets kept in process, one per principal (tenant + subject), so one portal
cannot starve the others: a bucket holds ``rate_limit_burst`` tokens and refills at
``rate_limit_per_s``; an empty bucket answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ingest.config import Settings
from ingest.errors import EnclaveError
from service.deps import PrincipalDep
from service.errors import envelope

MULTIPART_OVERHEAD = 1024 * 1024  # the form's other fields and part headers around the file
MAX_BUCKETS = 10_000


class RequestTooLarge(StarletteHTTPException):
    """Raised while reading a body that grew past the limit (FastAPI re-raises HTTP exceptions as they are)."""

    code = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body exceeds {limit} bytes; send less (JSON bodies: "
            "ENCLAVE_API__MAX_REQUEST_BYTES, uploads: ENCLAVE_MAX_UPLOAD_BYTES)",
        )


class RateLimited(EnclaveError):
    code = "rate_limited"
    status = 429
    retryable = True

    def __init__(self, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(
            f"too many requests from this principal; retry after {seconds} s (ENCLAVE_API__RATE_LIMIT_PER_S)"
        )
        self.headers = {"Retry-After": str(seconds)}


def body_limit(scope: Scope, settings: Settings) -> int:
    """The byte limit for this request's body, by content type."""
    content_type = next((v for k, v in scope.get("headers", []) if k == b"content-type"), b"")
    if content_type.lower().startswith(b"multipart/form-data"):
        return settings.max_upload_bytes + MULTIPART_OVERHEAD
    return settings.api.max_request_bytes


def _declared_length(scope: Scope) -> int | None:
    raw = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
    return int(raw) if raw is not None and raw.isdigit() else None


class BodySizeLimit:
    """Refuses request bodies over :func:`body_limit` with 413 in the error envelope."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope, self.settings)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            refusal = RequestTooLarge(limit)
            response = envelope(413, refusal.detail, refusal.code, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class TokenBuckets:
    """Token buckets by key, refilled lazily on each take; thread-safe."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 when granted, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
            if tokens >= 1.0:
                self._store(key, tokens - 1.0, now)
                return 0.0
            self._store(key, tokens, now)
            return (1.0 - tokens) / self.rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= MAX_BUCKETS:
            full = [k for k, (t, s) in self._buckets.items() if t + (now - s) * self.rate >= self.burst]
            for stale in full or list(self._buckets)[: MAX_BUCKETS // 10]:
                del self._buckets[stale]
        self._buckets[key] = (tokens, now)


def install_rate_limits(app_state: object, settings: Settings) -> None:
    """Give the app its buckets (``app.state.rate_limits``), sized from settings."""
    app_state.rate_limits = TokenBuckets(settings.api.rate_limit_per_s, settings.api.rate_limit_burst)  # type: ignore[attr-defined]


async def rate_limit(request: Request, principal: PrincipalDep) -> None:
    """Dependency: one token from the caller's bucket, or 429 with ``Retry-After``. ``async``: the bucket's
    lock is held for a few arithmetic operations, cheaper than a thread-pool hop.

    :raises RateLimited: the principal's bucket is empty.
    """
    buckets: TokenBuckets | None = getattr(request.app.state, "rate_limits", None)
    if buckets is None:
        return
    wait = buckets.take(f"{principal.tenant}\x00{principal.subject}")
    if wait > 0:
        raise RateLimited(wait)


RateLimitDep = Depends(rate_limit)
RateLimitedDep = Annotated[None, RateLimitDep]

"""What the app factory wires in for portals: body limits, per-principal rate limits, 405s that name every
allowed method, and the options every router is included with (documented errors, rate limits)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette.routing import Match, Route

from ingest.config import Settings
from service.errors import ERROR_RESPONSES, envelope
from service.limits import BodySizeLimit, RateLimitDep, install_rate_limits

UNMETERED_TAGS = frozenset({"health"})  # probes carry no principal and must never be throttled


def install_portal(app: FastAPI, settings: Settings) -> None:
    """Body size limits (413), per-principal rate-limit buckets (429), and 405s that name every allowed method."""
    app.add_middleware(BodySizeLimit, settings=settings)
    install_rate_limits(app.state, settings)
    app.add_exception_handler(405, _method_not_allowed)


async def _method_not_allowed(request: Request, _exc: Exception) -> Response:
    """Starlette's 405 names the methods of the first route on the path only; ``Allow`` must list all of them."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and isinstance(route, Route | APIRoute) and route.methods:
            allowed |= set(route.methods)
    methods = ", ".join(sorted(allowed))
    return envelope(
        405, f"{request.method} is not allowed here; use {methods}", "method_not_allowed", headers={"Allow": methods}
    )


def route_options(router: APIRouter) -> dict[str, Any]:
    """``include_router`` options: the error envelope documented on every route, rate limits on metered ones."""
    metered = not UNMETERED_TAGS & set(router.tags)
    return {"responses": ERROR_RESPONSES, "dependencies": [RateLimitDep] if metered else []}

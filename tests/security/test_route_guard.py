"""Every /v1 route declares the roles it needs; a new route without ``require(...)`` fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

from tests.security.conftest import Site

OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
    "/",
    "/web/config",
}  # how the page signs in (client id and provider endpoints: public by nature)


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "router", None) or getattr(route, "original_router", None)
        yield from _routes(list(getattr(route, "routes", None) or getattr(inner, "routes", None) or []))


def _calls(dependant: Any) -> Iterator[str]:
    for sub in dependant.dependencies:
        yield getattr(sub.call, "__name__", "")
        yield from _calls(sub)


def test_every_api_route_requires_a_role(site: Site) -> None:
    routes = list(_routes(site.client.app.routes))  # type: ignore[attr-defined]
    api = [r for r in routes if r.path.startswith("/v1/")]
    assert len(api) >= 15
    unguarded = [
        f"{sorted(r.methods)} {r.path}" for r in api if not any(c.startswith("require_") for c in _calls(r.dependant))
    ]
    assert unguarded == []
    assert {r.path for r in routes if not r.path.startswith("/v1/")} <= OPEN


def test_open_routes_reveal_nothing_without_a_key(site: Site) -> None:
    assert site.client.get("/healthz").status_code == 200
    assert site.client.get("/v1/documents").status_code == 401
    assert site.client.get("/v1/models").status_code == 401

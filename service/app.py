"""The FastAPI application: routers, error envelope, offline API docs, the web page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from ingest.config import Settings, get_settings
from service.compliance import routes as compliance
from service.errors import install_error_handlers
from service.observability.install import FASTAPI_TELEMETRY, install_observability
from service.openapi import install_openapi
from service.portal_middleware import install_portal, route_options
from service.proxies import ForwardedFor
from service.routes import backups, chat, documents, health, query, webhooks
from service.routes import keys as api_keys
from service.routes import policy as access_policy
from service.state import AppState, build_state
from service.web import install_web
from service.web import routes as web
from service.webhook_delivery import start_deliverer

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"

# The router registry: every router the app serves, in the order it is included (the order routes match
# and the OpenAPI document lists them). True: with route_options (documented errors, rate limits on metered
# routes); the web page's public router has neither. No other module imports a route module.
ROUTERS: list[tuple[APIRouter, bool]] = [
    (web.router, True),
    (web.public, False),
    (health.router, True),
    (documents.router, True),
    (query.router, True),
    (compliance.router, True),
    (chat.router, True),
    (webhooks.router, True),
    (api_keys.router, True),
    (access_policy.router, True),
    (backups.router, True),
]


def create_app(settings: Settings | None = None, state: AppState | None = None) -> FastAPI:
    """Build the app; without ``state`` the lifespan builds one from ``settings`` and closes it on exit."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = state is None
        app.state.enclave = state or await run_in_threadpool(build_state, settings or get_settings())
        deliverer = start_deliverer(app.state.enclave)
        try:
            yield
        finally:
            await run_in_threadpool(deliverer.stop)
            if owned:
                await run_in_threadpool(app.state.enclave.close)

    app = FastAPIOffline(
        title="Enclave",
        version="0.1.0",
        lifespan=lifespan,
        telemetry=FASTAPI_TELEMETRY,
        description="Self-hosted retrieval-augmented generation for regulated data.",
    )
    install_error_handlers(app)
    app.add_middleware(
        ForwardedFor, trusted_proxies=(settings or (state.settings if state else get_settings())).api.trusted_proxies
    )
    install_observability(app, settings or (state.settings if state else get_settings()))
    install_portal(app, settings or (state.settings if state else get_settings()))
    install_web(app, settings or (state.settings if state else get_settings()))
    for router, with_options in ROUTERS:
        app.include_router(router, **(route_options(router) if with_options else {}))
    install_openapi(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    return app

"""The web page's server side: security headers, the sign-in configuration, and the routes only it needs."""

from __future__ import annotations

from fastapi import FastAPI

from ingest.config import Settings
from service.web.headers import SecurityHeaders
from service.web.signin import WebSignIn


def install_web(app: FastAPI, settings: Settings) -> None:
    """Strict headers on the page and the API docs; ``/web/config``, ``/v1/me`` and citation passages."""
    from service.portal import route_options  # late: these import the auth and compliance stacks
    from service.web import routes

    signin = WebSignIn(settings.auth.oidc)
    app.state.web_signin = signin
    app.add_middleware(SecurityHeaders, signin=signin)
    app.include_router(routes.router, **route_options(routes.router))
    app.include_router(routes.public)

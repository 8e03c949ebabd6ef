"""The web page's server side: security headers and the sign-in configuration.

Its routes (``/web/config``, ``/v1/me``, citation passages) are in :mod:`service.web.routes`, included by
the app's router registry (:data:`service.app.ROUTERS`).
"""

from __future__ import annotations

from fastapi import FastAPI

from ingest.config import Settings
from service.web.headers import SecurityHeaders
from service.web.signin import WebSignIn


def install_web(app: FastAPI, settings: Settings) -> None:
    """Strict headers on the page and the API docs, and the sign-in configuration ``/web/config`` serves."""
    signin = WebSignIn(settings.auth.oidc)
    app.state.web_signin = signin
    app.add_middleware(SecurityHeaders, signin=signin)

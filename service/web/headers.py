"""Security headers for the web page and the API docs: a strict Content-Security-Policy and friends.

The page loads only its own files (no inline script or style, no other origin); the one exception
is the identity provider's token endpoint, which the page calls to finish an OIDC sign-in. The
Swagger UI page that FastAPI renders carries one inline script, so ``/docs`` allows inline code but,
like the page, no other origin: both work air-gapped. Pure ASGI, so streamed answers pass untouched.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.web.signin import WebSignIn, origin_of

COMMON = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
    b"cross-origin-opener-policy": b"same-origin",
}
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def page_csp(signin: WebSignIn) -> str:
    """The page's policy: its own origin only, plus the configured token endpoint for the OIDC code exchange."""
    client = signin.client()
    connect = "'self'" + (f" {origin_of(client.token_endpoint)}" if client else "")
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith("/static/")


def _is_docs(path: str) -> bool:
    return path in ("/docs", "/redoc", "/docs/oauth2-redirect") or path.startswith("/static-offline-docs/")


class SecurityHeaders:
    """Adds the headers to the page's and the docs' responses; every other response is left as it is."""

    def __init__(self, app: ASGIApp, signin: WebSignIn) -> None:
        self.app = app
        self.signin = signin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        # the first page request may fetch the provider's discovery document: off the event loop
        csp = await run_in_threadpool(page_csp, self.signin) if _is_page(path) else DOCS_CSP if _is_docs(path) else None
        if csp is None:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in COMMON]
                message["headers"] = [*headers, *COMMON.items(), (b"content-security-policy", csp.encode())]
            await send(message)

        await self.app(scope, receive, send_with_headers)

"""What the browser needs for OIDC sign-in (authorisation code + PKCE): the endpoints and the client id.

The endpoints come from the settings or, when they are left out, from the issuer's discovery
document, fetched once by the server (the page itself talks only to Enclave and, for the token
exchange, to the configured token endpoint; the Content-Security-Policy allows nothing else).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ingest.config import OidcSettings

log = logging.getLogger(__name__)
DISCOVERY = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class OidcClient:
    issuer: str
    client_id: str
    authorization_endpoint: str
    token_endpoint: str
    scope: str

    def as_dict(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "scope": self.scope,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
        }


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class WebSignIn:
    """The page's OIDC client, resolved on first use; ``None`` without a web client id or when discovery fails."""

    def __init__(self, oidc: OidcSettings) -> None:
        self._oidc = oidc
        self._client: OidcClient | None = None
        self._resolved = False
        self._lock = threading.Lock()

    def client(self) -> OidcClient | None:
        with self._lock:
            if not self._resolved:
                self._client = self._resolve()
                self._resolved = self._client is not None or not self._oidc.web_client_id
            return self._client

    def _resolve(self) -> OidcClient | None:
        oidc = self._oidc
        if not (oidc.configured and oidc.web_client_id and oidc.issuer):
            return None
        found = {} if oidc.authorization_endpoint and oidc.token_endpoint else _discover(oidc.issuer)
        authorize = oidc.authorization_endpoint or found.get("authorization_endpoint")
        token = oidc.token_endpoint or found.get("token_endpoint")
        if not (isinstance(authorize, str) and isinstance(token, str)):
            return None
        return OidcClient(oidc.issuer, oidc.web_client_id, authorize, token, oidc.web_scope)


def _discover(issuer: str) -> dict[str, object]:
    try:
        response = httpx.get(issuer.rstrip("/") + DISCOVERY, timeout=5)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("OIDC discovery failed; web sign-in falls back to API keys error=%s", type(exc).__name__)
        return {}
    return body if isinstance(body, dict) else {}

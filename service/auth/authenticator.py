"""Bearer credentials → a principal: the dev key, a hashed API key, or an OIDC JWT.

Every refusal raises the same :class:`Unauthenticated` (one message, one code); the reason goes
to the service log with the credential kind, never the credential.
"""

from __future__ import annotations

import hmac
import logging

from sqlalchemy.engine import Engine

from ingest.config import Settings
from service.auth import api_keys
from service.auth.dev_key import dev_key
from service.auth.errors import AuthNotConfigured, TokenRejected, Unauthenticated
from service.auth.oidc import OidcVerifier
from service.auth.principal import ROLES, Principal

log = logging.getLogger(__name__)
MAX_CREDENTIAL_CHARS = 16_384


class Authenticator:
    """Resolves ``Authorization: Bearer …`` against the configured identity sources."""

    def __init__(self, settings: Settings, engine: Engine, *, oidc: OidcVerifier | None, dev: str | None) -> None:
        self._engine = engine
        self._tenant = settings.default_tenant
        self._oidc = oidc
        self._dev = dev.encode("utf-8") if dev else None

    def authenticate(self, authorization: str | None) -> Principal:
        """:raises Unauthenticated: no credential, or one that is malformed, forged, expired or revoked."""
        token = _bearer(authorization)
        try:
            return self._resolve(token)
        except TokenRejected as exc:
            log.info("credential refused kind=%s reason=%s", _kind(token), exc)
            raise Unauthenticated() from None

    def _resolve(self, token: str) -> Principal:
        if self._dev is not None and hmac.compare_digest(token.encode("utf-8"), self._dev):
            return Principal(self._tenant, "dev", roles=ROLES, auth_method="dev_key")
        if token.startswith(api_keys.KEY_PREFIX):
            return self._api_key(token)
        if self._oidc is not None and token.count(".") == 2:
            return self._oidc.principal(token)
        raise TokenRejected("not a credential this site accepts")

    def _api_key(self, token: str) -> Principal:
        record = api_keys.find_active(self._engine, token)
        if record is None:
            raise TokenRejected("unknown, revoked or expired API key")
        return Principal(
            record.tenant,
            f"key:{record.id}",
            groups=tuple(record.groups),
            roles=tuple(record.roles),
            auth_method="api_key",
        )


def _bearer(authorization: str | None) -> str:
    if not authorization or len(authorization) > MAX_CREDENTIAL_CHARS:
        raise Unauthenticated()
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated()
    return token


def _kind(token: str) -> str:
    if token.startswith(api_keys.KEY_PREFIX):
        return "api_key"
    return "jwt" if token.count(".") == 2 else "unknown"


def build_authenticator(settings: Settings, engine: Engine) -> Authenticator:
    """The site's identity sources. :raises AuthNotConfigured: production mode with no IdP and no API key."""
    oidc = OidcVerifier(settings.auth.oidc) if settings.auth.oidc.configured else None
    if settings.mode == "production" and oidc is None and not api_keys.any_active(engine):
        raise AuthNotConfigured(
            "ENCLAVE_MODE=production needs an identity provider (ENCLAVE_AUTH__OIDC__ISSUER, __AUDIENCE, __JWKS_URL "
            "or __JWKS_FILE) or at least one API key (`enclave keys create --tenant T --roles admin`)"
        )
    key = dev_key(settings)
    return Authenticator(settings, engine, oidc=oidc, dev=key.value if key else None)

"""Authentication and authorisation errors (translated to HTTP in ``service.errors`` like every other)."""

from __future__ import annotations

from ingest.errors import EnclaveError

# One message for every rejected credential: a caller learns nothing about why (expired, forged,
# revoked, unknown key) — the operator finds the reason in the service log.
UNAUTHENTICATED = "missing or invalid credentials; send Authorization: Bearer <API key or OIDC access token>"


class Unauthenticated(EnclaveError):
    code = "unauthenticated"
    status = 401

    def __init__(self) -> None:
        super().__init__(UNAUTHENTICATED)
        self.headers = {"WWW-Authenticate": 'Bearer realm="enclave"'}


class PermissionDenied(EnclaveError):
    """The principal is known but the route's role or the access policy refuses this request."""

    code = "forbidden"
    status = 403


class AuthNotConfigured(EnclaveError):
    """Production mode without any way to authenticate: the service refuses to start."""

    code = "auth_not_configured"
    status = 503


class TokenRejected(Exception):
    """Why a credential was refused; logged for the operator, never shown to the caller."""

"""Role checks for the compliance routes.

One small function so the identity work's ``require(role)`` (and its Rego policy) can replace it
in one place.
"""

from __future__ import annotations

from ingest.errors import EnclaveError
from service.auth import Principal


class Forbidden(EnclaveError):
    code = "forbidden"
    status = 403


def require_role(principal: Principal, role: str) -> None:
    """:raises Forbidden: the principal lacks ``role`` (the message names it, so an admin can grant it)."""
    if role not in principal.roles:
        raise Forbidden(f"this needs the {role!r} role; ask an administrator to grant it to {principal.subject!r}")

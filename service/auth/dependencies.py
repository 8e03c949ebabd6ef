"""FastAPI dependencies: :func:`current_principal` authenticates, :func:`require` declares a route's roles.

Every route that touches tenant data declares what it needs, e.g.
``@router.post("/query", dependencies=[require("reader", action="query")])``; the access policy
(``policies/*.rego``) makes the decision, so changing a policy file changes who may call what.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ingest.audit.trail import AuditEvent
from ingest.errors import ServiceUnavailable
from service.auth.access import AccessControl
from service.auth.actor import actor_of
from service.auth.errors import PermissionDenied
from service.auth.principal import Principal, Role
from service.policy.port import Decision


def access_control(request: Request) -> AccessControl:
    """The app's access control; a service without one serves nothing (fail closed)."""
    state = getattr(request.app.state, "enclave", None)
    access: AccessControl | None = getattr(state, "access", None)
    if access is None:
        raise ServiceUnavailable("Enclave is still starting (no access control yet); retry in a few seconds")
    return access


def current_principal(request: Request) -> Principal:
    """The authenticated caller. :raises Unauthenticated: (401) no valid ``Authorization: Bearer`` credential."""
    return access_control(request).principal(request.headers.get("authorization"))


def require(*roles: Role, action: str) -> Any:
    """A route dependency: the caller must hold one of ``roles`` and the policy must allow ``action``.

    :raises PermissionDenied: (403) with the policy's reasons.
    """

    async def check(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        # In the event loop, not the thread pool: the policy's answers are memoised per revision (a dict lookup
        # under a lock); only a denial writes to the store, and that goes to the pool.
        decision = access_control(request).decide(principal, action, roles)
        if not decision.allowed:
            await run_in_threadpool(audit_denial, request, principal, action, decision)
            raise PermissionDenied(decision.reason)
        return principal

    check.__name__ = f"require_{'_or_'.join(roles)}_{action}"
    return Depends(check)


def audit_denial(request: Request, principal: Principal, action: str, decision: Decision) -> None:
    """A refused request is part of the trail: ``<action>`` with outcome ``denied`` and the policy's reason.

    :raises AuditUnavailable: the trail cannot take it (the caller gets 503, not a silent 403).
    """
    trail = request.app.state.enclave.components.compliance.audit
    trail.record(
        AuditEvent(
            actor_of(principal, request),
            action,
            "denied",
            decision="deny",
            decision_reason=decision.reason[:512],
            detail={"path": request.url.path},
        )
    )


AccessDep = Annotated[AccessControl, Depends(access_control)]

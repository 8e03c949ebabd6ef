"""Who did it, for the audit trail: the :class:`~ingest.audit.trail.Actor` of a principal in a request."""

from __future__ import annotations

import uuid

from fastapi import Request

from ingest.audit.trail import Actor
from service.auth.principal import Principal
from service.observability.logs import current_request_id, current_server_request_id, new_server_request_id


def request_id_of(request: Request) -> str:
    """The id the observability middleware bound (``X-Request-ID``), else the header, else a new one."""
    return current_request_id() or request.headers.get("x-request-id") or uuid.uuid4().hex


def actor_of(principal: Principal, request: Request | None = None) -> Actor:
    """The principal as the audit trail records it, with the request's ids and client address when there is one."""
    client = request.client.host if request is not None and request.client else None
    request_id = request_id_of(request) if request is not None else None
    server_id = (current_server_request_id() or new_server_request_id()) if request is not None else None
    return Actor(
        tenant=principal.tenant,
        subject=principal.subject,
        roles=tuple(principal.roles),
        auth_method=principal.auth_method,
        request_id=request_id,
        client=client,
        server_request_id=server_id,
    )

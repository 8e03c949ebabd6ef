"""Per-request audit context: the actor (principal + request id + client address) and the trail.

Routes record through :class:`RequestAudit`; a failure to write raises ``AuditUnavailable`` (503)
before anything is returned. :meth:`RequestAudit.failures` records the outcome of requests that
fail, so the trail shows denied and broken requests too, not only successful ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Request

from ingest.audit.trail import Actor, AuditEvent, AuditUnavailable
from ingest.errors import EnclaveError
from ingest.store.compliance_models import AuditRecord
from service.auth.actor import actor_of
from service.deps import PrincipalDep, StateDep
from service.state import AppState


class RequestAudit:
    """Records audit events for one request; the latency is measured from the request's start."""

    def __init__(self, state: AppState, actor: Actor) -> None:
        self.state = state
        self.actor = actor
        self._started = time.perf_counter()

    def record(
        self,
        action: str,
        outcome: str = "ok",
        *,
        document_ids: Sequence[str] = (),
        chunk_ids: Sequence[str] = (),
        query: str | None = None,
        model: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one record now. :raises AuditUnavailable: nothing may be returned to the caller."""
        event = AuditEvent(
            self.actor,
            action,
            outcome,
            document_ids=document_ids,
            chunk_ids=chunk_ids,
            model=model,
            query=query,
            latency_ms=int((time.perf_counter() - self._started) * 1000),
            detail=detail or {},
            decision="allow",  # every route that records here passed its require() policy check; denials record "deny"
        )
        return self.state.components.compliance.audit.record(event)

    @contextmanager
    def failures(self, action: str, *, query: str | None = None, document_ids: Sequence[str] = ()) -> Iterator[None]:
        """Record ``error:<code>`` for a request that fails with an Enclave error, then re-raise it."""
        try:
            yield
        except AuditUnavailable:
            raise
        except EnclaveError as exc:
            self.record(
                action, f"error:{exc.code}", query=query, document_ids=document_ids, detail={"status": exc.status}
            )
            raise


async def request_audit(request: Request, state: StateDep, principal: PrincipalDep) -> RequestAudit:
    """``async``: it blocks on nothing (the ids come from the request's context), so no thread-pool hop."""
    return RequestAudit(state, actor_of(principal, request))


AuditDep = Annotated[RequestAudit, Depends(request_audit)]

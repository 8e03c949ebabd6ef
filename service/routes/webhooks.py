"""/v1/webhooks (admin): register a portal's URL for signed job callbacks, list, delete, see deliveries.

The signing secret is returned once, by ``POST``; store it then. Each delivery is a JSON ``POST`` with
``X-Enclave-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`` —
``service.client.verify_signature`` checks one.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlmodel import col, func, select

from ingest import webhooks as hooks
from ingest.audit.trail import AuditEvent
from ingest.errors import NotFound
from ingest.store.db import session_scope
from ingest.store.models import DeliveryStatus, Webhook, WebhookDelivery
from ingest.webhook_targets import TargetPolicy
from service.auth import Principal, require
from service.compliance.context import AuditDep
from service.deps import StateDep
from service.listing import NOT_MODIFIED, LimitQuery, OffsetQuery, conditional_json, page_of
from service.webhook_schemas import (
    DeliveryList,
    DeliveryPublic,
    Event,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookPublic,
)

# Webhooks are a tenant-wide setting: only administrators manage them.
AdminDep = Annotated[Principal, require("admin", action="webhooks")]
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def _load(state: StateDep, tenant: str, webhook_id: str) -> Webhook:
    with session_scope(state.components.engine) as session:
        hook = session.get(Webhook, webhook_id)
    if hook is None or hook.tenant != tenant:
        raise NotFound(f"webhook {webhook_id} not found; GET /v1/webhooks lists yours", param="webhook_id")
    return hook


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
def create_webhook(state: StateDep, principal: AdminDep, body: WebhookCreate, audit: AuditDep) -> WebhookCreated:
    """Register a URL for job callbacks; the response's ``secret`` is never shown again.

    :raises WebhookTargetRefused: (400) the URL's host is or resolves to an internal address that
        ``ENCLAVE_WEBHOOKS__ALLOWED_HOSTS`` does not list (checked again before every delivery).
    """
    with audit.failures("webhook.created"):  # a refused internal target is an attempt worth keeping
        TargetPolicy.of(state.settings.webhooks).check(body.url)
    secret = hooks.new_secret()
    keyring = state.components.compliance.keyring
    hook = Webhook(
        tenant=principal.tenant,
        url=body.url,
        events_json=_events_json(body.events),
        description=body.description,
        secret=hooks.seal_secret(keyring, principal.tenant, secret),
        created_by=principal.subject,
    )
    with state.components.compliance.audit.transaction() as audited:
        audited.session.add(hook)
        detail = {"webhook_id": hook.id, "events": body.events}
        audited.append(AuditEvent(audit.actor, "webhook.created", detail=detail))
    return WebhookCreated(**WebhookPublic.of(hook).model_dump(), secret=secret)


def _events_json(events: list[Event]) -> str:
    return json.dumps(sorted(set(events)))


@router.get("", response_model=WebhookList, responses=NOT_MODIFIED)
def list_webhooks(
    request: Request, state: StateDep, principal: AdminDep, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> Response:
    """This tenant's webhooks, oldest first."""
    where = Webhook.tenant == principal.tenant
    with session_scope(state.components.engine) as session:
        total = int(session.exec(select(func.count()).select_from(Webhook).where(where)).one())
        found = session.exec(
            select(Webhook).where(where).order_by(col(Webhook.created_at), col(Webhook.id)).offset(offset).limit(limit)
        ).all()
    page = page_of(request, total, limit, offset)
    return conditional_json(request, WebhookList(webhooks=[WebhookPublic.of(h) for h in found], **page.model_dump()))


@router.get("/{webhook_id}", response_model=WebhookPublic)
def get_webhook(state: StateDep, principal: AdminDep, webhook_id: str) -> WebhookPublic:
    return WebhookPublic.of(_load(state, principal.tenant, webhook_id))


@router.delete("/{webhook_id}", response_model=WebhookPublic)
def delete_webhook(state: StateDep, principal: AdminDep, webhook_id: str, audit: AuditDep) -> WebhookPublic:
    """Stop callbacks to this URL; its pending deliveries are cancelled, its delivery history kept."""
    hook = _load(state, principal.tenant, webhook_id)
    with state.components.compliance.audit.transaction() as audited:
        gone = audited.session.get(Webhook, hook.id)
        if gone is not None:
            audited.session.delete(gone)
        audited.append(AuditEvent(audit.actor, "webhook.deleted", detail={"webhook_id": hook.id}))
    hooks.cancel_pending(state.components.engine, hook.id)
    return WebhookPublic.of(hook)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, responses=NOT_MODIFIED)
def list_deliveries(
    request: Request,
    state: StateDep,
    principal: AdminDep,
    webhook_id: str,
    status_is: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> Response:
    """This webhook's deliveries, newest first, optionally one status."""
    _load(state, principal.tenant, webhook_id)
    where = [WebhookDelivery.webhook_id == webhook_id]
    if status_is is not None:
        where.append(WebhookDelivery.status == status_is)
    with session_scope(state.components.engine) as session:
        total = int(session.exec(select(func.count()).select_from(WebhookDelivery).where(*where)).one())
        found = session.exec(
            select(WebhookDelivery)
            .where(*where)
            .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id))
            .offset(offset)
            .limit(limit)
        ).all()
    page = page_of(request, total, limit, offset)
    return conditional_json(request, DeliveryList(deliveries=[_delivery(d) for d in found], **page.model_dump()))


def _delivery(d: WebhookDelivery) -> DeliveryPublic:
    return DeliveryPublic(
        id=d.id,
        event=d.event,
        status=d.status,
        attempts=d.attempts,
        response_status=d.response_status,
        error=d.error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
        next_attempt_at=hooks.next_attempt(d),
    )

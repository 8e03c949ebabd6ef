"""The service's webhook deliverer, started with the app, with every delivery attempt audited."""

from __future__ import annotations

from ingest.audit.trail import Actor, AuditEvent, AuditTrail
from ingest.store.models import DeliveryStatus, Webhook, WebhookDelivery
from ingest.webhooks import DeliveryObserver, WebhookDeliverer
from service.state import AppState

OUTCOMES = {DeliveryStatus.delivered: "delivered", DeliveryStatus.failed: "failed", DeliveryStatus.pending: "retrying"}


def audit_deliveries(trail: AuditTrail) -> DeliveryObserver:
    """Record every delivery attempt in the audit trail: ``webhook.delivery`` with its outcome."""

    def observe(delivery: WebhookDelivery, webhook: Webhook | None) -> None:
        detail = {
            "delivery_id": delivery.id,
            "webhook_id": delivery.webhook_id,
            "event": delivery.event,
            "attempts": delivery.attempts,
            "response_status": delivery.response_status,
        }
        actor = Actor.system(delivery.tenant, "webhooks")
        trail.record(AuditEvent(actor, "webhook.delivery", OUTCOMES[delivery.status], detail=detail))

    return observe


def start_deliverer(state: AppState) -> WebhookDeliverer:
    components = state.components
    observer = audit_deliveries(components.compliance.audit)
    deliverer = WebhookDeliverer(components.engine, state.settings.webhooks, components.compliance.keyring, observer)
    deliverer.start()
    return deliverer

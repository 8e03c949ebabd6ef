"""Request and response models of ``/v1/webhooks`` (shared by the routes and the client)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from ingest.store.models import DeliveryStatus, Webhook
from ingest.webhooks import EVENTS

URL_PATTERN = (  # http(s), a host name or IPv4 address (no IPv6 literals), an optional port, printable ASCII after
    r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$"
)
Event = Literal["ingest.job.completed", "ingest.job.failed"]


class WebhookCreate(BaseModel):
    url: str = Field(max_length=2048, pattern=URL_PATTERN, description="http(s) URL that receives the callbacks")
    events: list[Event] = Field(
        default=["ingest.job.completed", "ingest.job.failed"], min_length=1, max_length=len(EVENTS)
    )
    description: str | None = Field(default=None, max_length=256)


class WebhookPublic(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, hook: Webhook) -> WebhookPublic:
        return cls(
            id=hook.id,
            url=hook.url,
            events=hook.events,
            description=hook.description,
            created_by=hook.created_by,
            created_at=hook.created_at,
        )


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="HMAC-SHA256 signing secret; shown only in this response")


class WebhookList(BaseModel):
    webhooks: list[WebhookPublic]
    total: int
    limit: int
    offset: int
    next: str | None


class DeliveryPublic(BaseModel):
    id: str
    event: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None
    error: str | None
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="when a pending delivery is tried next")
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryPublic]
    total: int
    limit: int
    offset: int
    next: str | None

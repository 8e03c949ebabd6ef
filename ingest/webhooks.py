"""Webhooks: durable, signed callbacks to portals when ingest jobs finish or fail.

When a job ends, :func:`announce_job` writes one :class:`WebhookDelivery` row per webhook of the
document's tenant that subscribed to the event — and never raises into the job: a broken webhook
table must not fail an ingest. A :class:`WebhookDeliverer` thread claims due rows with a
conditional UPDATE (so replicas never send the same attempt twice), POSTs the JSON body with

``X-Enclave-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``

and marks the row delivered on a 2xx answer; anything else is retried with exponential backoff
until ``max_attempts``. Payloads carry identifiers and outcomes only, never document text. Before
each attempt the URL's host is resolved and checked again (:mod:`ingest.webhook_targets`) and the
POST goes to the checked address; a host that now resolves somewhere not allowed fails the delivery
without a request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from ingest.config import WebhookSettings
from ingest.errors import EnclaveError
from ingest.keys.crypto import open_text, seal_text
from ingest.keys.keyring import KeyRing
from ingest.store.db import session_scope
from ingest.store.models import DeliveryStatus, Document, Job, Webhook, WebhookDelivery, new_id, utcnow
from ingest.webhook_targets import Target, TargetPolicy, WebhookHostUnresolved, WebhookTargetRefused

log = logging.getLogger(__name__)
JOB_COMPLETED = "ingest.job.completed"
JOB_FAILED = "ingest.job.failed"
EVENTS = (JOB_COMPLETED, JOB_FAILED)
SIGNATURE_HEADER = "X-Enclave-Signature"
CLAIM_BATCH = 20
_WAKE = threading.Event()

DeliveryObserver = Callable[[WebhookDelivery, Webhook | None], None]


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _secret_aad(tenant: str) -> bytes:
    return f"webhook.secret:{tenant}".encode()


def seal_secret(keyring: KeyRing, tenant: str, secret: str) -> str:
    """The signing secret as stored: sealed under the tenant's key, like everything else of the tenant."""
    return seal_text(keyring.tenant_key(tenant), secret, _secret_aad(tenant))


def open_secret(keyring: KeyRing, webhook: Webhook) -> str:
    """:raises EnclaveError: the tenant's key is gone (erased tenant) or the value was altered."""
    return open_text(keyring.tenant_key(webhook.tenant), webhook.secret, _secret_aad(webhook.tenant))


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, tolerance_s: int = 300, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is recent (replays older than the tolerance fail)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    timestamp = int(parts["t"])
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts["v1"])


def announce_job(engine: Engine, job_id: str, event: str) -> int:
    """Queue ``event`` for the job's tenant's webhooks; returns how many deliveries were queued.

    Never raises: webhook bookkeeping must not fail or block the ingest job that triggered it.
    """
    try:
        queued = _enqueue(engine, job_id, event)
    except Exception:  # noqa: BLE001 - a webhook problem is logged, the job's outcome stands
        log.exception("webhook.enqueue_failed job=%s event=%s", job_id, event)
        return 0
    if queued:
        _WAKE.set()
    return queued


def _enqueue(engine: Engine, job_id: str, event: str) -> int:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        document = session.get(Document, job.document_id) if job else None
        if job is None or document is None:
            return 0
        tenant_hooks = session.exec(select(Webhook).where(Webhook.tenant == document.tenant)).all()
        hooks = [h for h in tenant_hooks if event in h.events]
        body = json.dumps(_payload(event, job, document), sort_keys=True)
        session.add_all(
            WebhookDelivery(webhook_id=h.id, tenant=h.tenant, event=event, payload_json=body) for h in hooks
        )
        return len(hooks)


def _payload(event: str, job: Job, document: Document) -> dict[str, object]:
    data = {
        "job_id": job.id,
        "document_id": document.id,
        "collection": document.collection,
        "document_status": str(document.status),
        "job_status": str(job.status),
        "attempts": job.attempts,
        "chunk_count": document.chunk_count,
        "error": job.error,
        "error_code": job.error_code,
    }
    return {"id": "evt_" + new_id(), "type": event, "created": utcnow().isoformat(), "data": data}


def backoff(attempts: int, cfg: WebhookSettings) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt."""
    return timedelta(seconds=min(cfg.backoff_base_s * 2 ** max(attempts - 1, 0), cfg.backoff_max_s))


@dataclass(frozen=True)
class Delivering:
    """What delivery needs besides the rows: settings, an HTTP client, the secret opener, an observer."""

    cfg: WebhookSettings
    client: httpx.Client
    keyring: KeyRing
    observer: DeliveryObserver | None = None
    targets: TargetPolicy | None = None  # None: the settings' (ENCLAVE_WEBHOOKS__ALLOWED_HOSTS)

    def target_policy(self) -> TargetPolicy:
        return self.targets or TargetPolicy.of(self.cfg)


def deliver_due(engine: Engine, how: Delivering) -> int:
    """Attempt every due delivery once; returns how many were attempted."""
    claimed = _claim_due(engine, how.cfg)
    for delivery in claimed:
        _attempt(engine, how, delivery)
    return len(claimed)


def _claim_due(engine: Engine, cfg: WebhookSettings) -> list[WebhookDelivery]:
    """Take due rows by pushing their next attempt past this one's timeout (a lease another replica respects)."""
    now = utcnow()
    lease = now + timedelta(seconds=cfg.timeout_s * 2 + 5)
    claimed: list[WebhookDelivery] = []
    with session_scope(engine) as session:
        due = session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.status == DeliveryStatus.pending, col(WebhookDelivery.next_attempt_at) <= now)
            .order_by(col(WebhookDelivery.next_attempt_at))
            .limit(CLAIM_BATCH)
        ).all()
        for delivery in due:
            taken = session.execute(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.id) == delivery.id,
                    col(WebhookDelivery.status) == DeliveryStatus.pending,
                    col(WebhookDelivery.next_attempt_at) == delivery.next_attempt_at,
                )
                .values(next_attempt_at=lease)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(delivery)
    return claimed


def _attempt(engine: Engine, how: Delivering, delivery: WebhookDelivery) -> None:
    with session_scope(engine) as session:
        webhook = session.get(Webhook, delivery.webhook_id)
    if webhook is None:
        _record(engine, delivery, how.cfg, None, "the webhook was deleted", final=True)
    else:
        try:
            secret = open_secret(how.keyring, webhook)
        except EnclaveError:
            _record(
                engine,
                delivery,
                how.cfg,
                None,
                "the signing secret cannot be opened (its tenant key is gone); register the webhook again",
                final=True,
            )
        else:
            try:
                target = how.target_policy().check(webhook.url)  # resolved again now: no rebinding since registration
            except WebhookHostUnresolved as exc:
                _record(engine, delivery, how.cfg, None, exc.message[:512], final=False)
            except WebhookTargetRefused as exc:
                _record(engine, delivery, how.cfg, None, f"not sent: {exc.message}"[:512], final=True)
            else:
                status, error = _post(how.client, target, secret, delivery)
                _record(engine, delivery, how.cfg, status, error, final=False)
    if how.observer is not None:
        _observe(how.observer, engine, delivery.id, webhook)


def _post(
    client: httpx.Client, target: Target, secret: str, delivery: WebhookDelivery
) -> tuple[int | None, str | None]:
    """POST to the checked address itself; ``Host`` and the TLS server name (SNI, certificate) stay the URL's host."""
    body = delivery.payload_json.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Enclave-Webhooks/1",
        "Host": target.host_header(),
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        "X-Enclave-Event": delivery.event,
        "X-Enclave-Delivery": delivery.id,
    }
    try:
        response = client.post(
            target.pinned_url(), content=body, headers=headers, extensions={"sni_hostname": target.host}
        )
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: the receiver could not be reached or did not answer in time"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"the receiver answered HTTP {response.status_code}"


def _record(
    engine: Engine,
    delivery: WebhookDelivery,
    cfg: WebhookSettings,
    status: int | None,
    error: str | None,
    *,
    final: bool,
) -> None:
    attempts = delivery.attempts + (0 if final else 1)
    values: dict[str, object] = {"attempts": attempts, "response_status": status, "error": error}
    if error is None:
        values |= {"status": DeliveryStatus.delivered, "delivered_at": utcnow()}
    elif final or attempts >= cfg.max_attempts:
        values |= {"status": DeliveryStatus.failed}
    else:
        values |= {"next_attempt_at": utcnow() + backoff(attempts, cfg)}
    with session_scope(engine) as session:
        session.execute(update(WebhookDelivery).where(col(WebhookDelivery.id) == delivery.id).values(**values))
    log.info("webhook.attempt delivery=%s status=%s attempts=%d ok=%s", delivery.id, status, attempts, error is None)


def _observe(observer: DeliveryObserver, engine: Engine, delivery_id: str, webhook: Webhook | None) -> None:
    with session_scope(engine) as session:
        current = session.get(WebhookDelivery, delivery_id)
    if current is None:
        return
    try:
        observer(current, webhook)
    except Exception:  # noqa: BLE001 - an observer (the audit trail) failing must not stop deliveries
        log.exception("webhook.observer_failed delivery=%s", delivery_id)


def cancel_pending(engine: Engine, webhook_id: str) -> int:
    """Mark a deleted webhook's pending deliveries failed so they are not attempted."""
    with session_scope(engine) as session:
        result = session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.webhook_id) == webhook_id,
                col(WebhookDelivery.status) == DeliveryStatus.pending,
            )
            .values(status=DeliveryStatus.failed, error="the webhook was deleted")
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


class WebhookDeliverer:
    """Runs :func:`deliver_due` in a daemon thread, woken when a delivery is queued or every ``poll_s``."""

    def __init__(
        self, engine: Engine, cfg: WebhookSettings, keyring: KeyRing, observer: DeliveryObserver | None = None
    ) -> None:
        self._engine = engine
        self._cfg = cfg
        self._keyring = keyring
        self._observer = observer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="enclave-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        _WAKE.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=self._cfg.timeout_s, follow_redirects=False, trust_env=False) as client:
            how = Delivering(self._cfg, client, self._keyring, self._observer)
            while not self._stop.is_set():
                try:
                    deliver_due(self._engine, how)
                except Exception:  # noqa: BLE001 - the deliverer must outlive one bad iteration
                    log.exception("webhook deliverer iteration failed")
                _WAKE.wait(self._cfg.poll_s)
                _WAKE.clear()


def next_attempt(delivery: WebhookDelivery) -> datetime | None:
    return delivery.next_attempt_at if delivery.status == DeliveryStatus.pending else None

"""Job webhooks: a receiver on loopback gets signed callbacks, a 500 is retried with backoff, failures are announced."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlmodel import col, select

from ingest.config import WebhookSettings
from ingest.store.compliance_models import AuditRecord
from ingest.store.db import session_scope
from ingest.store.models import Webhook
from ingest.webhooks import backoff, sign, verify
from service.client import EnclaveClient
from tests.conftest import DOCS
from tests.service.portal.conftest import Portal, bearer, reader_key


class Receiver:
    """A portal's endpoint: records every callback; answers 500 to the first ``fail_first`` of them."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append({"headers": dict(self.headers), "body": body, "at": time.monotonic()})
                self.send_response(500 if len(receiver.calls) <= receiver.fail_first else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/enclave"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def about(self, document_id: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if json.loads(c["body"])["data"]["document_id"] == document_id]

    def wait_for(self, count: int, document_id: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Callbacks about one document (jobs of earlier tests may still be finishing)."""
        deadline = time.monotonic() + timeout
        while len(self.about(document_id)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.about(document_id)) >= count, f"{len(self.about(document_id))} of {count} callbacks arrived"
        return self.about(document_id)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver(fail_first=1)
    yield instance
    instance.server.shutdown()


@pytest.fixture(scope="module")
def enclave(portal: Portal) -> EnclaveClient:
    return EnclaveClient(portal.url, portal.headers.get("Authorization", "").removeprefix("Bearer ") or None)


def test_completed_job_is_called_back_signed_and_retried_after_a_500(
    enclave: EnclaveClient, receiver: Receiver, portal: Portal
) -> None:
    hook = enclave.create_webhook(receiver.url, description="portal A")
    assert hook.secret.startswith("whsec_") and "secret" not in enclave.get_webhook(hook.id).model_dump()
    with session_scope(portal.components.engine) as session:
        stored = session.get(Webhook, hook.id)
    assert stored is not None and hook.secret not in stored.secret  # sealed under the tenant key at rest
    text = f"Webhook test {uuid.uuid4().hex}: invoices are due in 45 days."
    accepted = enclave.upload(text.encode(), filename="w.txt")
    failed_call, ok_call = receiver.wait_for(2, accepted.document_id)
    assert failed_call["body"] == ok_call["body"]  # the same event, delivered again
    assert ok_call["at"] - failed_call["at"] >= 0.2 * 0.9  # waited the configured backoff first
    event = json.loads(ok_call["body"])
    assert event["type"] == "ingest.job.completed" and event["data"]["document_id"] == accepted.document_id
    assert event["data"]["job_id"] == accepted.job_id and event["data"]["chunk_count"] >= 1
    assert verify(hook.secret, ok_call["headers"]["X-Enclave-Signature"], ok_call["body"])
    assert not verify("whsec_other", ok_call["headers"]["X-Enclave-Signature"], ok_call["body"])
    delivery = _settled(enclave, hook.id)
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 2, 204)
    assert _audited(portal, delivery.id) == ["retrying", "delivered"]
    enclave.delete_webhook(hook.id)


def test_failed_job_is_announced_and_deleted_webhooks_get_nothing(enclave: EnclaveClient, portal: Portal) -> None:
    receiver = Receiver()
    hook = enclave.create_webhook(receiver.url, events=["ingest.job.failed"])
    fine = enclave.upload(f"completed events are not sent here {uuid.uuid4().hex}".encode(), filename="ok.txt")
    broken = enclave.upload((DOCS / "bad" / "invalid.pdf").read_bytes(), filename=f"broken-{uuid.uuid4().hex}.pdf")
    event = json.loads(receiver.wait_for(1, broken.document_id)[0]["body"])
    assert event["type"] == "ingest.job.failed" and event["data"]["error_code"]
    assert event["data"]["document_status"] == "failed" and event["data"]["job_status"] == "failed"
    assert enclave.wait_for_document(fine.document_id).status == "ready" and receiver.about(fine.document_id) == []
    enclave.delete_webhook(hook.id)
    again = enclave.upload((DOCS / "bad" / "invalid.pdf").read_bytes() + uuid.uuid4().bytes, filename="again.pdf")
    assert enclave.wait_for_document(again.document_id).status == "failed"
    time.sleep(1.0)  # ten deliverer polls
    assert receiver.about(again.document_id) == []
    receiver.server.shutdown()


def test_only_admins_manage_webhooks_and_urls_must_be_http(portal: Portal) -> None:
    with portal.http() as http:
        bad = http.post("/v1/webhooks", json={"url": "file:///etc/passwd"})
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "url"
        assert http.get("/v1/webhooks/nope").json()["error"]["code"] == "not_found"
        as_reader = http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=bearer(reader_key(portal)))
        anonymous = http.get("/v1/webhooks", headers={"Authorization": ""})
    assert as_reader.status_code == 403 and "admin" in as_reader.json()["error"]["message"]
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthenticated"


def _settled(enclave: EnclaveClient, webhook_id: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliveries = enclave.list_deliveries(webhook_id).deliveries
        if deliveries and deliveries[0].status != "pending":
            return deliveries[0]
        time.sleep(0.1)
    raise AssertionError("the delivery did not settle")


def _audited(portal: Portal, delivery_id: str) -> list[str]:
    with session_scope(portal.components.engine) as session:
        rows = session.exec(
            select(AuditRecord).where(col(AuditRecord.action) == "webhook.delivery").order_by(col(AuditRecord.seq))
        ).all()
    return [r.outcome for r in rows if json.loads(r.detail_json).get("delivery_id") == delivery_id]


def test_signature_rejects_tampering_and_replays() -> None:
    body = b'{"type": "ingest.job.completed"}'
    header = sign("whsec_s", body, int(time.time()))
    assert verify("whsec_s", header, body)
    assert not verify("whsec_s", header, body + b" ")
    assert not verify("whsec_s", sign("whsec_s", body, int(time.time()) - 3600), body)
    assert not verify("whsec_s", "v1=deadbeef", body)


def test_backoff_doubles_up_to_the_cap() -> None:
    cfg = WebhookSettings(backoff_base_s=2, backoff_max_s=20)
    assert [backoff(n, cfg).total_seconds() for n in range(1, 6)] == [2, 4, 8, 16, 20]

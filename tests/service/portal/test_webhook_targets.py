"""Deliveries re-check the webhook's host and connect to the checked address: no DNS rebinding.

Host names here are answered by a stand-in for DNS (the one process boundary that cannot run here
without the network) that only ever gives loopback addresses, and the system resolver is closed to
names for the duration, so not even a DNS query leaves the machine. The one receiver listens on
127.0.0.1, which this portal's ``ENCLAVE_WEBHOOKS__ALLOWED_HOSTS`` lists; 127.0.0.2 and 127.0.0.3
stand for "internal, not listed", and are never contacted: the refusal comes before a connection.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ingest import webhook_targets
from ingest.webhook_targets import IPAddress, WebhookHostUnresolved
from service.client import EnclaveAPIError, EnclaveClient
from service.webhook_schemas import DeliveryPublic
from tests.service.portal.conftest import Portal
from tests.service.portal.test_webhooks import Receiver

HOST = "hooks.portal.test"


class FakeDNS:
    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if host not in self.answers:
            raise WebhookHostUnresolved(f"{host} does not resolve", param="url")
        return [ipaddress.ip_address(a) for a in self.answers[host]]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(webhook_targets, "resolve", fake)
    real = socket.getaddrinfo

    def numeric_only(host: str | bytes | None, *args: Any, **kwargs: Any) -> Any:
        try:
            if host is not None:
                ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"no DNS in this test ({host!r})") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    return fake


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.server.shutdown()


@pytest.fixture(scope="module")
def enclave(portal: Portal) -> EnclaveClient:
    return EnclaveClient(portal.url, portal.headers.get("Authorization", "").removeprefix("Bearer ") or None)


def _port(receiver: Receiver) -> int:
    return int(receiver.server.server_address[1])


def _settled(enclave: EnclaveClient, webhook_id: str, timeout: float = 60) -> DeliveryPublic:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deliveries = enclave.list_deliveries(webhook_id).deliveries
        if deliveries and deliveries[0].status != "pending":
            return deliveries[0]
        time.sleep(0.1)
    raise AssertionError("the delivery did not settle")


def test_a_delivery_goes_to_the_checked_address_under_the_url_s_host_name(
    enclave: EnclaveClient, dns: FakeDNS, receiver: Receiver
) -> None:
    dns.answers[HOST] = ["127.0.0.1"]
    hook = enclave.create_webhook(f"http://{HOST}:{_port(receiver)}/hooks/enclave")
    try:
        accepted = enclave.upload(f"pinned delivery {uuid.uuid4().hex}".encode(), filename="pin.txt")
        call = receiver.wait_for(1, accepted.document_id)[0]
        assert call["headers"]["Host"] == f"{HOST}:{_port(receiver)}"  # the name no real resolver knows
        assert dns.asked.count(HOST) >= 2  # at registration, and again before the delivery
    finally:
        enclave.delete_webhook(hook.id)


def test_a_host_rebound_to_an_internal_address_after_registration_is_not_contacted(
    enclave: EnclaveClient, dns: FakeDNS, receiver: Receiver
) -> None:
    dns.answers[HOST] = ["127.0.0.1"]
    hook = enclave.create_webhook(f"http://{HOST}:{_port(receiver)}/hooks/enclave")
    try:
        dns.answers[HOST] = ["127.0.0.1", "127.0.0.3"]  # one address that is not allowed is enough to refuse
        accepted = enclave.upload(f"rebinding {uuid.uuid4().hex}".encode(), filename="rebind.txt")
        assert enclave.wait_for_document(accepted.document_id).status == "ready"
        delivery = _settled(enclave, hook.id)
        assert (delivery.status, delivery.response_status, delivery.attempts) == ("failed", None, 0)
        assert delivery.error is not None and "not sent" in delivery.error and "127.0.0.3" in delivery.error
        assert receiver.about(accepted.document_id) == []
    finally:
        enclave.delete_webhook(hook.id)


def test_an_address_not_on_the_allow_list_is_refused_at_registration(enclave: EnclaveClient, dns: FakeDNS) -> None:
    dns.answers[HOST] = ["127.0.0.2"]  # loopback, but only 127.0.0.1 is listed
    with pytest.raises(EnclaveAPIError, match="127.0.0.2") as refused:
        enclave.create_webhook(f"http://{HOST}:9/hooks/enclave")
    assert (refused.value.status, refused.value.code) == (400, "webhook_target_refused")
    assert all(h.url.find(HOST) < 0 for h in enclave.list_webhooks().webhooks)

"""X-Forwarded-For is believed only from configured proxies (issue 15, finding 7): a caller on the server's
own host cannot write a forged client address into the audit trail of a live (uvicorn) server."""

from __future__ import annotations

import asyncio
import uuid

from sqlmodel import col, select

from ingest.store.compliance_models import AuditRecord
from ingest.store.db import session_scope
from service.proxies import ForwardedFor, client_of, networks
from tests.service.portal.conftest import Portal


def _audited_client(portal: Portal, request_id: str) -> list[str | None]:
    with session_scope(portal.components.engine) as session:
        rows = session.exec(select(AuditRecord).where(col(AuditRecord.request_id) == request_id)).all()
    return [r.client for r in rows]


def test_a_loopback_caller_cannot_forge_its_address_by_default(portal: Portal) -> None:
    request_id = uuid.uuid4().hex
    with portal.http() as http:
        listed = http.get("/v1/documents", headers={"X-Forwarded-For": "203.0.113.7", "X-Request-ID": request_id})
    assert listed.status_code == 200
    assert _audited_client(portal, request_id) == ["127.0.0.1"]  # the peer, not the header


def test_a_trusted_proxy_names_the_client_read_from_the_right() -> None:
    trusted = networks(["10.0.0.0/8", "127.0.0.1"])
    assert client_of("127.0.0.1", "198.51.100.4, 10.1.1.1", trusted) == "198.51.100.4"
    assert client_of("127.0.0.1", "6.6.6.6, 198.51.100.4", trusted) == "198.51.100.4"  # a prepended forgery
    assert client_of("192.0.2.9", "198.51.100.4", trusted) == "192.0.2.9"  # not a trusted peer
    assert client_of("127.0.0.1", "not-an-address", trusted) == "127.0.0.1"
    assert client_of("127.0.0.1", "198.51.100.4", networks([])) == "127.0.0.1"


def test_the_middleware_rewrites_only_behind_a_trusted_proxy() -> None:
    seen: list[object] = []

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        seen.append(scope["client"])

    headers = [(b"x-forwarded-for", b"198.51.100.4")]
    for trusted, expected in ((["127.0.0.1"], ("198.51.100.4", 0)), ([], ("127.0.0.1", 5000))):
        scope = {"type": "http", "client": ("127.0.0.1", 5000), "headers": headers}
        asyncio.run(ForwardedFor(app, trusted)(scope, None, None))  # type: ignore[arg-type]
        assert seen.pop() == expected

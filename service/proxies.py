"""Which address is the client: the connecting peer, or what a *trusted* reverse proxy says it is.

``X-Forwarded-For`` is believed only when the peer is one of ``ENCLAVE_API__TRUSTED_PROXIES`` (none
by default), and then read from the right: the first address that is not itself a trusted proxy is
the client. Anyone else's header is ignored, so a caller on the same host cannot put a forged
address into the audit trail. uvicorn's own proxy-header handling (which trusts any 127.0.0.1 peer)
must be off: serve with :data:`UVICORN_OPTIONS`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UVICORN_OPTIONS = {"proxy_headers": False}  # Enclave reads X-Forwarded-For itself (ForwardedFor)
_HEADER = b"x-forwarded-for"


def networks(entries: Sequence[str]) -> list[Network]:
    """``ENCLAVE_API__TRUSTED_PROXIES`` as networks. :raises ValueError: an entry is not an address or network."""
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries]


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip())
    except ValueError:
        return None


def _within(host: str, trusted: Sequence[Network]) -> bool:
    address = _address(host)
    return address is not None and any(address in net for net in trusted if net.version == address.version)


def client_of(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy that names someone else."""
    if not forwarded_for or not _within(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop if _address(hop) is not None else peer  # garbage from the proxy: keep the peer
    return hops[0] if hops else peer


class ForwardedFor:
    """Pure ASGI: rewrites ``scope["client"]`` from a trusted proxy's ``X-Forwarded-For``, else leaves it."""

    def __init__(self, app: ASGIApp, trusted_proxies: Sequence[str] = ()) -> None:
        self.app = app
        self.trusted = networks(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and self.trusted and peer:
            header = next((bytes(v).decode("latin-1") for k, v in scope.get("headers", []) if k == _HEADER), None)
            client = client_of(str(peer[0]), header, self.trusted)
            if client != peer[0]:
                scope = {**scope, "client": (client, 0)}
        await self.app(scope, receive, send)

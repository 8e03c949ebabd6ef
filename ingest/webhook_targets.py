"""Where webhooks may point: public addresses, plus the internal hosts an operator allow-lists.

A webhook URL is checked when it is registered and again before every delivery, *after* DNS
resolution: every address the host resolves to must be allowed, and the delivery connects to the
address that was checked (the ``Host`` header and TLS server name stay the URL's host), so a name
that resolves to a public address at registration and to ``127.0.0.1`` later (DNS rebinding) is
refused at delivery. Loopback, private, link-local (cloud metadata), shared, reserved, unspecified
and multicast addresses are refused, also when written as numbers (``2130706433``, ``0x7f.1``,
``0177.0.0.1``, ``127.1``) or embedded in IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64).

``ENCLAVE_WEBHOOKS__ALLOWED_HOSTS`` lists the exceptions: host names (matched exactly, any case),
IP addresses or networks (``10.20.0.0/16``) that deliveries may reach although they are internal.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

from ingest.config import WebhookSettings
from ingest.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


class WebhookTargetRefused(InvalidRequest):
    """The URL's host is (or resolves to) an address webhooks may not reach."""

    code = "webhook_target_refused"


class WebhookHostUnresolved(WebhookTargetRefused):
    """The URL's host has no address now (perhaps only for now: a delivery retries)."""

    code = "webhook_host_unresolved"


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (numeric forms included, as a client would read them).

    :raises WebhookHostUnresolved: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookHostUnresolved(
            f"the webhook host {host!r} does not resolve; use a name this server can resolve", param="url"
        ) from exc
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` read the way ``inet_aton`` reads it (1–4 parts, decimal, ``0x`` hex or ``0`` octal), else None."""
    parts = host.rstrip(".").split(".") if host else []
    if not 1 <= len(parts) <= 4 or not all(_NUMBER.fullmatch(p) for p in parts):
        return None
    values = [_part_value(p) for p in parts]
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return ipaddress.IPv4Address(0)  # out of range: refused like the unspecified address, never guessed at
    number = sum(v << (8 * (3 - i)) for i, v in enumerate(head)) + last
    return ipaddress.IPv4Address(number)


def _part_value(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    return int(part, 8) if part.startswith("0") else int(part)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a globally routed unicast address (and, in IPv6, embeds no non-public IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return address.ipv4_mapped is None and is_public(embedded)  # a mapped address is never sent as such
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect (``address``) and what to call it (``host``)."""

    url: str
    host: str
    port: int
    address: IPAddress

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (the connection cannot be re-resolved)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return urlunsplit((parts.scheme, f"{literal}:{self.port}", parts.path or "/", parts.query, ""))

    def host_header(self) -> str:
        default = {"http": 80, "https": 443}[urlsplit(self.url).scheme]
        return self.host if self.port == default else f"{self.host}:{self.port}"


class TargetPolicy:
    """Checks webhook URLs against the public-address rule and the operator's allow-list."""

    def __init__(
        self, allowed_hosts: Sequence[str] = (), *, allow_public: bool = True, resolver: Resolver | None = None
    ) -> None:
        self._names = {h.strip().lower().rstrip(".") for h in allowed_hosts if not _network(h)}
        self._networks = [n for n in map(_network, allowed_hosts) if n is not None]
        self._allow_public = allow_public
        self._resolve = resolver

    @classmethod
    def of(cls, cfg: WebhookSettings) -> TargetPolicy:
        return cls(cfg.allowed_hosts, allow_public=cfg.allow_public)

    def check(self, url: str) -> Target:
        """The URL resolved and checked; connect to ``Target.address`` only.

        :raises WebhookTargetRefused: not http(s), or some address of its host is not allowed.
        """
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme not in ("http", "https") or not host:
            raise WebhookTargetRefused("a webhook URL must be http(s)://host[:port]/path", param="url")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # "https://host:69220/": urllib refuses ports outside 0-65535
            raise WebhookTargetRefused("the webhook URL's port must be a number from 1 to 65535", param="url") from None
        literal = _literal(host)
        if literal is None and host not in self._names and not (self._allow_public or self._networks):
            self._refuse(host, None)  # nothing it could resolve to is allowed: do not even ask DNS
        addresses = [literal] if literal is not None else (self._resolve or resolve)(host, port)
        if not addresses:
            raise WebhookHostUnresolved(f"the webhook host {host!r} has no address", param="url")
        if host not in self._names:
            for address in addresses:
                self._require_allowed(host, address)
        return Target(url=url, host=host, port=port, address=addresses[0])

    def _require_allowed(self, host: str, address: IPAddress) -> None:
        if self._allow_public and is_public(address):
            return
        if not any(address in net for net in self._networks if net.version == address.version):
            self._refuse(host, address)

    def _refuse(self, host: str, address: IPAddress | None) -> NoReturn:
        where = f"resolves to {address}, which is " if address is not None else "is "
        allowed = "public addresses and " if self._allow_public else ""
        raise WebhookTargetRefused(
            f"the webhook host {host!r} {where}not allowed: webhooks reach {allowed}the hosts the operator lists in "
            "ENCLAVE_WEBHOOKS__ALLOWED_HOSTS only",
            param="url",
        )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return numeric_ipv4(host)


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(entry.strip().strip("[]"), strict=False)
    except ValueError:
        return None

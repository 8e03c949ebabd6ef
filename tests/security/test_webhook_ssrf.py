"""Webhooks cannot be pointed at the server's own network (SSRF): loopback, private, link-local (cloud
metadata), shared, unspecified and multicast addresses are refused at registration, however written.

Every case here is refused *at registration*, before any request: nothing is ever sent to these
addresses, and no host name is looked up except ``localhost`` (``/etc/hosts``). Deliveries (checked
again, to the checked address) are in ``tests/service/portal/test_webhook_targets.py``.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.webhook_targets import TargetPolicy, is_public, numeric_ipv4
from tests.security.conftest import Site

REFUSED_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "0.0.0.0/8",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]


@pytest.fixture
def admin(site: Site) -> dict[str, str]:
    """A fresh key (its own rate-limit bucket) of a tenant without documents: no job could trigger a delivery."""
    return site.key("ssrf", "admin")


def _register(site: Site, admin: dict[str, str], url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    response = site.client.post("/v1/webhooks", headers=admin, json={"url": url})
    return response.status_code, response.json()


def _assert_refused(site: Site, admin: dict[str, str], url: str) -> None:
    status, body = _register(site, admin, url)
    assert status == 400, (url, body)
    assert body["error"]["code"] == "webhook_target_refused" and body["error"]["param"] == "url", body
    assert "ENCLAVE_WEBHOOKS__ALLOWED_HOSTS" in body["error"]["message"]


def _v4_in(networks: list[ipaddress.IPv4Network]) -> st.SearchStrategy[ipaddress.IPv4Address]:
    return st.sampled_from(networks).flatmap(lambda net: st.integers(0, net.num_addresses - 1).map(lambda i: net[i]))


@st.composite
def encodings(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """``address`` the ways inet_aton reads it: 1 to 4 parts (the last fills the rest), each decimal, hex or octal."""
    octets = list(address.packed)
    parts = draw(st.integers(1, 4))
    values = octets[: parts - 1] + [int.from_bytes(bytes(octets[parts - 1 :]), "big")]

    def spell(value: int) -> str:
        form = draw(st.sampled_from(["dec", "hex", "HEX", "oct"]))
        if form == "dec":
            return str(value)
        if form == "oct":
            return "0" + format(value, "o")
        return ("0x" if form == "hex" else "0X") + format(value, "x" if form == "hex" else "X")

    return ".".join(spell(v) for v in values)


@given(data=st.data())
@settings(max_examples=300, deadline=None)
def test_every_numeric_spelling_reads_as_inet_aton_reads_it(data: st.DataObject) -> None:
    address = data.draw(_v4_in(REFUSED_V4) | st.ip_addresses(v=4))
    spelled = data.draw(encodings(address))
    assert numeric_ipv4(spelled) == address == ipaddress.IPv4Address(socket.inet_aton(spelled))


@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_internal_addresses_are_refused_in_any_numeric_spelling(site: Site, data: st.DataObject) -> None:
    address = data.draw(_v4_in(REFUSED_V4))
    spelled = data.draw(encodings(address))
    port = data.draw(st.sampled_from(["", ":1", ":8080"]))
    _assert_refused(site, site.key("ssrf", "admin"), f"http://{spelled}{port}/hook")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://localhost:1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0/",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.5.4/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://4294967296/",
        "http://0x100000000/",
        "http://1.256.0.0/",
        "http://LocalHost/",
    ],
)
def test_the_review_s_targets_are_refused_and_nothing_is_stored(site: Site, admin: dict[str, str], url: str) -> None:
    _assert_refused(site, admin, url)
    assert site.client.get("/v1/webhooks", headers=admin).json()["total"] == 0
    denied = site.client.get("/v1/audit", headers=site.key("ssrf", "auditor"), params={"action": "webhook.created"})
    assert any(r["outcome"] == "error:webhook_target_refused" for r in denied.json()["records"])


@pytest.mark.parametrize(
    "address",
    [
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "2002:7f00:1::",
        "64:ff9b::a00:1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
)
def test_internal_ipv6_and_embedded_ipv4_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_public_addresses_pass_and_the_allow_list_admits_listed_internal_ones() -> None:
    assert TargetPolicy().check("https://93.184.215.14/hook").address == ipaddress.ip_address("93.184.215.14")
    assert is_public(ipaddress.ip_address("2606:4700:4700::1111"))
    listed = TargetPolicy(
        ["10.20.0.0/16", "portal.intranet"], resolver=lambda host, port: [ipaddress.ip_address("10.99.0.1")]
    )
    assert str(listed.check("http://10.20.3.4:8443/x").address) == "10.20.3.4"
    assert str(listed.check("http://Portal.Intranet/x").address) == "10.99.0.1"  # listed by name: its own addresses
    with pytest.raises(Exception, match="not allowed"):
        listed.check("http://other.intranet/x")  # resolves to 10.99.0.1, outside the listed network
    with pytest.raises(Exception, match="not allowed"):
        TargetPolicy(allow_public=False).check("https://93.184.215.14/hook")


def test_a_port_out_of_range_is_a_clear_400_not_a_500(site: Site, admin: dict[str, str]) -> None:
    status, body = _register(site, admin, "https://j:69220/")  # found by schemathesis
    assert status == 400 and "65535" in body["error"]["message"] and body["error"]["param"] == "url", body

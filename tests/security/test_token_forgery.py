"""Forged, stale and misdirected OIDC tokens (and other non-credentials) all get the same plain 401.

Each forgery starts from a token that works (the control case) and breaks exactly one thing, so
a verifier that skipped that one check would let the request through and fail the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import pytest

from service.auth.errors import UNAUTHENTICATED
from tests.security.conftest import AUDIENCE, SigningKey, Site, b64url, bearer, claims

LEAKS = ("expired", "signature", "kid", "issuer", "audience", "alg", "nbf", "exp", "revoked", "key", "token", "jwt")


def _unsigned(payload: dict[str, object], header: dict[str, object]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}."


def alg_none(site: Site) -> str:
    return _unsigned(claims(roles=["admin", "reader"]), {"alg": "none", "typ": "JWT", "kid": "k1"})


def hs256_with_public_key(site: Site) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = b64url(json.dumps(claims(roles=["admin"])).encode())
    signature = hmac.new(site.signing.public_pem(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def expired(site: Site) -> str:
    now = int(time.time())
    return site.signing.sign(claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600))


def not_yet_valid(site: Site) -> str:
    now = int(time.time())
    return site.signing.sign(claims(nbf=now + 3600, exp=now + 7200))


def wrong_issuer(site: Site) -> str:
    return site.signing.sign(claims(iss="https://evil.example.test/realms/enclave"))


def wrong_audience(site: Site) -> str:
    return site.signing.sign(claims(aud="another-api"))


def unknown_kid(site: Site) -> str:
    return SigningKey("k9").sign(claims())


def known_kid_other_key(site: Site) -> str:
    return SigningKey("k1").sign(claims())


def tampered_payload(site: Site) -> str:
    header, _, signature = site.signing.sign(claims()).split(".")
    forged = b64url(json.dumps(claims(roles=["admin", "reader"], tenant="globex")).encode())
    return f"{header}.{forged}.{signature}"


def missing_exp(site: Site) -> str:
    return site.signing.sign(claims(exp=None))


def audience_list_without_ours(site: Site) -> str:
    return site.signing.sign(claims(aud=["other-a", "other-b"]))


FORGERIES: list[Callable[[Site], str]] = [
    alg_none,
    hs256_with_public_key,
    expired,
    not_yet_valid,
    wrong_issuer,
    wrong_audience,
    unknown_kid,
    known_kid_other_key,
    tampered_payload,
    missing_exp,
    audience_list_without_ours,
]


def _assert_plain_401(response_status: int, body: dict[str, object], headers: dict[str, str]) -> None:
    assert response_status == 401
    assert body == {
        "error": {"message": UNAUTHENTICATED, "type": "authentication_error", "param": None, "code": "unauthenticated"}
    }
    assert headers.get("www-authenticate", "").startswith("Bearer")


def test_the_control_token_works(site: Site) -> None:
    response = site.client.get("/v1/documents", headers=bearer(site.signing.sign(claims(aud=[AUDIENCE, "x"]))))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
def test_forged_tokens_get_a_plain_401(site: Site, forge: Callable[[Site], str]) -> None:
    response = site.client.get("/v1/documents", headers=bearer(forge(site)))
    _assert_plain_401(response.status_code, response.json(), dict(response.headers))
    message = str(response.json()["error"]["message"]).lower().replace("api key or oidc access token", "")
    assert not [word for word in LEAKS if word in message.replace("bearer", "")]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer a.b.c",
        "Bearer enc_not-a-key-that-exists",
        "bearer " + "x" * 20_000,
        "Token abc",
    ],
)
def test_missing_or_malformed_credentials_get_the_same_401(site: Site, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = site.client.post("/v1/search", headers=headers, json={"query": "anything"})
    _assert_plain_401(response.status_code, response.json(), dict(response.headers))

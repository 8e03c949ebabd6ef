"""A site with auth on, shared by the attack suites: real components, an OIDC provider's JWKS file,
API keys of two tenants, and policies (a copy of ``policies/`` with an ethical wall between matters A and B).

The generator is a real OpenAI-compatible client pointed at a closed port: nothing here generates
an answer, and no request of these suites may reach it.
"""

from __future__ import annotations

import base64
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from ingest.runtime import build_components
from service.app import create_app
from service.auth import api_keys
from service.generation.openai_generator import OpenAICompatibleGenerator
from service.state import AppState, build_state
from tests.conftest import DEV_HEADERS, REPO, make_settings

ISSUER = "https://idp.example.test/realms/enclave"
AUDIENCE = "enclave-api"
WALL = {"name": "matter A vs matter B", "groups": ["matter:A", "matter:B"]}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()
        n, e = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"), numbers.e.to_bytes(3, "big")
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": b64url(n),
            "e": b64url(e.lstrip(b"\0")),
        }

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid, **header})


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "tenant": "acme",
        "groups": ["legal"],
        "roles": ["reader"],
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Site:
    client: TestClient
    state: AppState
    signing: SigningKey
    policies: Path

    def key(self, tenant: str, roles: str, groups: str = "", expires_days: float | None = None) -> dict[str, str]:
        created = api_keys.create_key(
            self.state.components.engine,
            tenant,
            roles.split(","),
            groups=[g for g in groups.split(",") if g],
            expires_days=expires_days,
        )
        return bearer(created.key)

    def upload(self, headers: dict[str, str], name: str, text: str, **form: str) -> str:
        response = self.client.post("/v1/documents", headers=headers, files={"file": (name, text.encode())}, data=form)
        assert response.status_code == 202, response.text
        return str(response.json()["document_id"])

    def wait_ready(self, headers: dict[str, str], *ids: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while pending and time.monotonic() < deadline:
            for doc_id in list(pending):
                body = self.client.get(f"/v1/documents/{doc_id}", headers=headers).json()
                assert body.get("status") != "failed", body
                if body.get("status") == "ready":
                    pending.discard(doc_id)
            time.sleep(0.1)
        assert not pending, f"not ready: {pending}"


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory, embedder, parser) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("security")
    signing = SigningKey("k1")
    jwks = root / "jwks.json"
    jwks.write_text(json.dumps({"keys": [signing.jwk()]}))
    policies = root / "policies"
    shutil.copytree(REPO / "policies", policies)
    access = json.loads((policies / "access.json").read_text())
    (policies / "access.json").write_text(json.dumps({**access, "walls": [WALL]}))
    oidc = {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": str(jwks), "leeway_s": 5}
    settings = make_settings(
        root / "data", auth={"oidc": oidc, "policy_check_s": 0.05}, compliance={"policies_dir": str(policies)}
    )
    components = build_components(settings, embedder=embedder, parser=parser)
    state = build_state(
        settings, components=components, generator=OpenAICompatibleGenerator("http://127.0.0.1:9", "none")
    )
    with TestClient(create_app(settings, state)) as client:
        yield Site(client, state, signing, policies)
    state.close()


__all__ = ["DEV_HEADERS"]

"""A tiny OpenID provider on loopback for the web page's sign-in test: discovery, JWKS, an
``/authorize`` that signs the user in at once, and a ``/token`` that checks PKCE (S256) like a
real provider would and returns an RS256 access token. Only what the authorisation-code flow needs."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "enclave"
CLIENT_ID = "enclave-web"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


@dataclass
class FakeIdP:
    """Signs in ``subject`` with ``roles`` for whoever asks; records what the browser sent."""

    subject: str = "alice"
    roles: tuple[str, ...] = ("auditor",)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    url: str = ""

    def start(self) -> None:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                idp.get(self)

            def do_POST(self) -> None:  # noqa: N802
                idp.post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()

    def jwk(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        raw = lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")  # noqa: E731
        return {
            "kty": "RSA",
            "kid": "k1",
            "use": "sig",
            "alg": "RS256",
            "n": b64url(raw(numbers.n)),
            "e": b64url(raw(numbers.e)),
        }

    def get(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        if parts.path == "/.well-known/openid-configuration":
            return _json(
                h,
                200,
                {
                    "issuer": self.url,
                    "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": f"{self.url}/token",
                    "jwks_uri": f"{self.url}/jwks",
                },
            )
        if parts.path == "/jwks":
            return _json(h, 200, {"keys": [self.jwk()]})
        if parts.path == "/authorize":
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            self.authorize_requests.append(query)
            code = secrets.token_urlsafe(16)
            self.codes[code] = query
            h.send_response(302)
            h.send_header("Location", f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}")
            h.end_headers()
            return None
        return _json(h, 404, {"error": "not_found"})

    def post(self, h: BaseHTTPRequestHandler) -> None:
        form = {k: v[0] for k, v in parse_qs(h.rfile.read(int(h.headers["Content-Length"])).decode()).items()}
        self.token_requests.append(form)
        asked = self.codes.pop(form.get("code", ""), None)
        if (
            asked is None
            or asked.get("code_challenge_method") != "S256"
            or s256(form.get("code_verifier", "")) != asked["code_challenge"]
        ):
            return _json(h, 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
        if form.get("redirect_uri") != asked["redirect_uri"] or form.get("client_id") != asked["client_id"]:
            return _json(h, 400, {"error": "invalid_grant", "error_description": "redirect_uri or client_id differ"})
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": self.subject,
            "tenant": "default",
            "roles": list(self.roles),
            "iat": now,
            "exp": now + 600,
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})
        return _json(h, 200, {"access_token": token, "token_type": "Bearer", "expires_in": 600})


def _json(h: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    h.send_response(status)
    h.send_header("Content-Type", "application/json")
    h.send_header("Access-Control-Allow-Origin", "*")  # the token endpoint is called from the page
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)

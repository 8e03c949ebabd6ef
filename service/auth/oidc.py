"""OIDC bearer tokens: signature by the site's JWKS, then ``iss``, ``aud``, ``exp``/``nbf``, then claims → principal.

The key set comes from a URL (the provider's ``jwks_uri``) or a file, is cached for
``jwks_cache_s``, and is fetched again when a token names a ``kid`` it does not hold (the provider
rotated its keys) — at most every ``jwks_refresh_min_s``, so forged kids cannot make Enclave hammer
the provider. Only asymmetric algorithms are accepted, and only those that fit the key's type:
``alg: none`` and HS256-signed-with-the-public-key never reach a verifier. PyJWT does the crypto.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from ingest.config import OidcSettings
from service.auth.errors import TokenRejected
from service.auth.principal import ROLES, Principal

log = logging.getLogger(__name__)
KEY_TYPES = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("EdDSA",)}


@dataclass(frozen=True)
class ClaimPaths:
    tenant: str
    subject: str
    groups: str
    roles: str


PRESETS = {
    "generic": ClaimPaths("tenant", "sub", "groups", "roles"),
    "keycloak": ClaimPaths("tenant", "sub", "groups", "realm_access.roles"),
    "entra": ClaimPaths("tid", "oid", "groups", "roles"),
    "okta": ClaimPaths("tenant", "sub", "groups", "groups"),
}


class JwksCache:
    """The provider's public keys by ``kid``, from a URL or a file; see the module docstring."""

    def __init__(self, url: str | None, file: Path | None, *, cache_s: float, refresh_min_s: float) -> None:
        self._url, self._file = url, file
        self._cache_s, self._refresh_min_s = cache_s, refresh_min_s
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._lock = threading.Lock()

    def key_for(self, kid: str | None) -> jwt.PyJWK | None:
        with self._lock:
            if time.monotonic() - self._fetched_at > self._cache_s:
                self._refresh()
            key = self._pick(kid)
            if key is None and time.monotonic() - self._fetched_at >= self._refresh_min_s:
                self._refresh()  # a kid we do not know: the provider may have rotated its keys
                key = self._pick(kid)
            return key

    def _pick(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            keys = jwt.PyJWKSet.from_dict(self._load()).keys
        except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as exc:
            log.warning("JWKS fetch failed; keeping %d cached keys error=%s", len(self._keys), type(exc).__name__)
            return
        usable = [k for k in keys if k.key_type in KEY_TYPES and k.public_key_use in (None, "sig")]
        self._keys = {k.key_id: k for k in usable}

    def _load(self) -> dict[str, Any]:
        if self._file is not None:
            loaded = json.loads(self._file.read_text(encoding="utf-8"))
        else:
            assert self._url is not None
            response = httpx.get(self._url, timeout=5.0, follow_redirects=False)
            response.raise_for_status()
            loaded = response.json()
        if not isinstance(loaded, dict):
            raise ValueError("a JWKS must be a JSON object with 'keys'")
        return loaded


class OidcVerifier:
    """Verifies a JWT and maps its claims to a :class:`Principal` (``auth_method="oidc"``)."""

    def __init__(self, settings: OidcSettings) -> None:
        assert settings.issuer and settings.audience
        self._cfg = settings
        self._issuer, self._audience = settings.issuer, settings.audience
        self._jwks = JwksCache(
            settings.jwks_url,
            settings.jwks_file,
            cache_s=settings.jwks_cache_s,
            refresh_min_s=settings.jwks_refresh_min_s,
        )
        preset = PRESETS[settings.provider]
        self.paths = ClaimPaths(
            settings.tenant_claim or preset.tenant,
            settings.subject_claim or preset.subject,
            settings.groups_claim or preset.groups,
            settings.roles_claim or preset.roles,
        )

    def principal(self, token: str) -> Principal:
        """:raises TokenRejected: with the reason (for the log; the caller gets a plain 401)."""
        return self.map_claims(self.verify(token))

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected("malformed token") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._cfg.algorithms:
            raise TokenRejected("algorithm not allowed")
        kid = header.get("kid")
        key = self._jwks.key_for(kid if isinstance(kid, str) else None)
        if key is None:
            raise TokenRejected("unknown signing key")
        if not alg.startswith(KEY_TYPES[str(key.key_type)]):
            raise TokenRejected("algorithm does not fit the key")
        return self._decode(token, key, alg)

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._cfg.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenRejected("not yet valid") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenRejected("bad signature") from exc
        except jwt.PyJWTError as exc:
            raise TokenRejected(type(exc).__name__) from exc
        return claims

    def map_claims(self, claims: Mapping[str, Any]) -> Principal:
        """Tenant, subject, groups and roles from the configured claim paths."""
        tenant = self._cfg.static_tenant or _string(claim(claims, self.paths.tenant))
        subject = _string(claim(claims, self.paths.subject))
        if not tenant or not subject:
            raise TokenRejected("tenant or subject claim missing")
        groups = _strings(claim(claims, self.paths.groups))
        if self._cfg.provider == "keycloak":  # full group paths: "/matter:A"
            groups = [g.removeprefix("/") for g in groups]
        mapped = {self._cfg.role_map.get(r, r) for r in _strings(claim(claims, self.paths.roles))}
        roles = tuple(sorted(r for r in mapped if r in ROLES))
        return Principal(
            tenant=tenant, subject=subject, groups=tuple(sorted(set(groups))), roles=roles, auth_method="oidc"
        )


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``); ``None`` when any step is missing."""
    value: Any = claims
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []

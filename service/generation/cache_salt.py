"""Per-tenant ``cache_salt`` for a shared vLLM: one tenant cannot probe another's prompts.

vLLM reuses the KV cache of any earlier prompt that shares a prefix, and a reused prefix answers
measurably faster: a tenant could time its own requests to learn what another tenant asked or was
shown. vLLM mixes ``cache_salt`` into its block hashes, so only requests with the same salt share
cache. The salt is an HMAC of the tenant id under a site secret, so it is stable across replicas (they
share the keyring) and cannot be guessed or computed from a tenant id alone.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol

PURPOSE = b"enclave/vllm-cache-salt/v1"


class SiteKeys(Protocol):
    """Where the site secret comes from (``ingest.keys.keyring.KeyRing``)."""

    def audit_key(self) -> bytes: ...


def tenant_cache_salt(keys: SiteKeys, tenant: str) -> str:
    """The tenant's salt: HMAC-SHA256 of the tenant id under a key derived for this purpose only.

    :raises KeyUnavailable: (or another keyring error) the site key cannot be read: fail closed.
    """
    salt_key = hmac.new(keys.audit_key(), PURPOSE, hashlib.sha256).digest()
    return hmac.new(salt_key, tenant.encode(), hashlib.sha256).hexdigest()

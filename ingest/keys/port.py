"""The key-encryption port: where the master key lives and what may be done with it.

Enclave never needs the master key's bytes, only three operations on it, which is exactly what a
cloud KMS (Encrypt/Decrypt with key versions) or Vault's transit engine (encrypt, decrypt, rotate)
offer. Data keys are generated locally, wrapped by this port and stored wrapped in the relational
store (see :mod:`ingest.keys.keyring`).
"""

from __future__ import annotations

from typing import Protocol


class KeyEncryptionKey(Protocol):
    """Contract every master-key adapter honours (local key file, KMS, Vault transit).

    ``wrap`` returns an opaque string that names the key version it used, so ``unwrap`` keeps
    working for older versions until they are retired. ``context`` is authenticated, not secret:
    a wrapped key only unwraps with the same context.
    """

    def warm_up(self) -> None:
        """Open (and on first start, create) the master key; fail fast when it is unusable."""

    @property
    def current_version(self) -> str:
        """The version ``wrap`` uses now."""

    def wrap(self, data_key: bytes, context: str) -> str:
        """Encrypt a data key under the current master key version."""

    def unwrap(self, wrapped: str, context: str) -> bytes:
        """Decrypt a data key. :raises KeyUnavailable: version retired or master key unreadable."""

    def version_of(self, wrapped: str) -> str:
        """The master key version a wrapped value was made with."""

    def rotate(self) -> str:
        """Create a new master key version, make it current, return its name (old ones still unwrap)."""

    def retire(self, version: str) -> None:
        """Destroy an old master key version once nothing is wrapped under it any more."""

"""AES-256-GCM sealing with associated data, the one cipher Enclave uses at rest.

A sealed value is ``nonce (12 bytes) || ciphertext || tag``; as text it is ``enc1:`` plus URL-safe
base64. The associated data binds a ciphertext to where it belongs (a chunk of one document, the
original of one document), so a value copied elsewhere fails to open instead of decrypting.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ingest.errors import EnclaveError

KEY_BYTES = 32
NONCE_BYTES = 12
TEXT_PREFIX = "enc1:"
BLOB_MAGIC = b"ENC1"


class DecryptionFailed(EnclaveError):
    """A ciphertext did not open: wrong key, wrong context, altered bytes, or its key was destroyed."""

    code = "decryption_failed"
    status = 500


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """:raises DecryptionFailed: the bytes were altered or belong to another key or context."""
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed("a stored value failed its integrity check (altered, or its key is gone)") from exc


def seal_text(key: bytes, text: str, aad: bytes) -> str:
    return TEXT_PREFIX + base64.urlsafe_b64encode(seal(key, text.encode("utf-8"), aad)).decode("ascii")


def open_text(key: bytes, token: str, aad: bytes) -> str:
    if not token.startswith(TEXT_PREFIX):
        raise DecryptionFailed("expected an encrypted value (enc1:...); the store holds clear text")
    return open_sealed(key, base64.urlsafe_b64decode(token[len(TEXT_PREFIX) :]), aad).decode("utf-8")


def is_sealed_text(value: str) -> bool:
    return value.startswith(TEXT_PREFIX)

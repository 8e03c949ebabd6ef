"""API keys: created and revoked by admins, shown once, stored as SHA-256 hashes, scoped and expiring.

A key is ``enc_`` plus 256 random bits, so a fast hash is enough to make the stored value useless
to whoever reads the database; the lookup is by that hash, never by comparing keys one by one.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from ingest.errors import InvalidRequest, NotFound
from ingest.store.db import session_scope
from ingest.store.models import ApiKey, utcnow
from service.auth.principal import ROLES

KEY_PREFIX = "enc_"
# Also the JSON Schema patterns of POST /v1/keys, so they must mean the same to Python's re, the Rust regex
# engine of pydantic and JSON Schema validators, and ECMA-262: explicit classes, no \s, full matches only.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/ -]{0,127}$")
GROUP = re.compile(r"^[^\t\n\v\f\r ,][^,]{0,255}$")
BY_HASH = select(ApiKey).where(col(ApiKey.key_hash) == bindparam("key_hash"))


@dataclass(frozen=True)
class CreatedKey:
    record: ApiKey
    key: str  # the only time the key exists outside the caller's hands


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands times back without a zone; they were written as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def create_key(
    engine: Engine,
    tenant: str,
    roles: Sequence[str],
    *,
    name: str | None = None,
    groups: Sequence[str] = (),
    expires_days: float | None = None,
    created_by: str = "local",
) -> CreatedKey:
    """Create a key; the plain key is returned once and only its hash is stored.

    :raises InvalidRequest: an unknown role, no role, a bad tenant, name or group, or a non-positive expiry.
    """
    label = name or f"key-{secrets.token_hex(3)}"
    record = ApiKey(
        tenant=_valid("tenant", tenant, NAME),
        name=_valid("name", label, NAME),
        key_hash="",
        roles_json=json.dumps(_roles(roles)),
        groups_json=json.dumps(_groups(groups)),
        created_by=created_by[:256],
        expires_at=_expiry(expires_days),
    )
    key = new_key()
    record.key_hash = hash_key(key)
    with session_scope(engine) as session:
        session.add(record)
    return CreatedKey(record, key)


def _valid(param: str, value: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(value):
        raise InvalidRequest(
            f"{param} {value!r} is not valid: use letters, digits and . _ : @ / - (at most 128)", param=param
        )
    return value


def _roles(roles: Sequence[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise InvalidRequest(
            f"roles must be one or more of {', '.join(ROLES)} (got {', '.join(unknown) or 'none'})", param="roles"
        )
    return sorted(set(roles))


def _groups(groups: Sequence[str]) -> list[str]:
    bad = [g for g in groups if not GROUP.fullmatch(g)]
    if bad:
        raise InvalidRequest("groups must be non-empty names without commas or leading spaces", param="groups")
    return sorted(set(groups))


def _expiry(days: float | None) -> datetime | None:
    if days is None:
        return None
    if days <= 0:
        raise InvalidRequest(
            "expires_days must be positive (omit it for a key that does not expire)", param="expires_days"
        )
    return utcnow() + timedelta(days=days)


def list_keys(engine: Engine, tenant: str | None = None) -> list[ApiKey]:
    """Every key (of ``tenant``), newest first; revoked and expired ones included, marked by their times."""
    query = select(ApiKey).order_by(col(ApiKey.created_at).desc(), col(ApiKey.id))
    if tenant is not None:
        query = query.where(ApiKey.tenant == tenant)
    with session_scope(engine) as session:
        return list(session.exec(query).all())


def revoke_key(engine: Engine, key_id: str, tenant: str | None = None) -> ApiKey:
    """Revoke now (idempotent). :raises NotFound: no such key (in ``tenant``)."""
    with session_scope(engine) as session:
        record = session.get(ApiKey, key_id)
        if record is None or (tenant is not None and record.tenant != tenant):
            raise NotFound(f"API key {key_id} not found; `enclave keys list` shows the ids", param="key_id")
        if record.revoked_at is None:
            record.revoked_at = utcnow()
            session.add(record)
        return record


def is_active(record: ApiKey, now: datetime | None = None) -> bool:
    now = now or utcnow()
    expires = aware(record.expires_at)
    return record.revoked_at is None and (expires is None or expires > now)


def find_active(engine: Engine, key: str) -> ApiKey | None:
    """The key's record if it exists, is not revoked and has not expired: read from the store on every call, so
    a revocation (by any process) refuses the key's next request. A bare connection, not an ORM session: every
    request pays for this lookup (bench/query.py). The record is a detached copy (its fields only)."""
    with engine.connect() as connection:
        row = connection.execute(BY_HASH, {"key_hash": hash_key(key)}).first()
    record = ApiKey.model_construct(**row._mapping) if row is not None else None
    return record if record is not None and is_active(record) else None


def any_active(engine: Engine) -> bool:
    return any(is_active(record) for record in list_keys(engine))

"""/v1/keys (admin): create, list and revoke the tenant's API keys; a new key is shown once, in the response."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest.store.models import ApiKey
from service.auth import Principal, Role, require
from service.auth import api_keys as keys
from service.compliance.context import AuditDep
from service.deps import StateDep

AdminDep = Annotated[Principal, require("admin", action="manage_keys")]
router = APIRouter(prefix="/v1/keys", tags=["keys"])


KeyName = Annotated[str, Field(max_length=128, pattern=keys.NAME.pattern)]
GroupName = Annotated[str, Field(max_length=256, pattern=keys.GROUP.pattern)]


class ApiKeyCreate(BaseModel):
    """The schema states every rule ``keys.create_key`` applies, so a request valid by it is never refused."""

    name: KeyName | None = Field(
        default=None, description="what the key is for (a portal, a script); letters, digits and . _ : @ / - and spaces"
    )
    roles: list[Role] = Field(min_length=1, description="reader, contributor, auditor and/or admin")
    groups: list[GroupName] = Field(
        default_factory=list, max_length=256, description="ACL groups the key belongs to: no commas, no leading space"
    )
    expires_days: float | None = Field(default=None, gt=0, le=3650, description="omit for a key that does not expire")


class ApiKeyPublic(BaseModel):
    """A key as listings show it: never the key, never its hash."""

    id: str
    tenant: str
    name: str
    roles: list[str]
    groups: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool

    @classmethod
    def of(cls, record: ApiKey) -> ApiKeyPublic:
        return cls(
            id=record.id,
            tenant=record.tenant,
            name=record.name,
            roles=record.roles,
            groups=record.groups,
            created_by=record.created_by,
            created_at=keys.aware(record.created_at) or record.created_at,
            expires_at=keys.aware(record.expires_at),
            revoked_at=keys.aware(record.revoked_at),
            active=keys.is_active(record),
        )


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the API key; shown only now, store it (send as Authorization: Bearer <key>)")


class ApiKeyList(BaseModel):
    keys: list[ApiKeyPublic]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_key(state: StateDep, principal: AdminDep, audit: AuditDep, req: ApiKeyCreate) -> ApiKeyCreated:
    """A new key for the caller's tenant; the response is the only place the key ever appears."""
    with audit.failures("key.created"):
        created = await run_in_threadpool(
            keys.create_key,
            state.components.engine,
            principal.tenant,
            req.roles,
            name=req.name,
            groups=req.groups,
            expires_days=req.expires_days,
            created_by=principal.subject,
        )
    audit.record(
        "key.created",
        detail={"key_id": created.record.id, "roles": created.record.roles, "groups": created.record.groups},
    )
    return ApiKeyCreated(**ApiKeyPublic.of(created.record).model_dump(), key=created.key)


@router.get("", response_model=ApiKeyList)
def list_keys(state: StateDep, principal: AdminDep) -> ApiKeyList:
    """The tenant's keys, newest first, revoked and expired ones included (``active`` says which work)."""
    return ApiKeyList(keys=[ApiKeyPublic.of(k) for k in keys.list_keys(state.components.engine, principal.tenant)])


@router.delete("/{key_id}", response_model=ApiKeyPublic)
def revoke_key(state: StateDep, principal: AdminDep, audit: AuditDep, key_id: str) -> ApiKeyPublic:
    """Revoke a key of the caller's tenant at once (idempotent); requests with it get 401 from now on."""
    with audit.failures("key.revoked"):
        record = keys.revoke_key(state.components.engine, key_id, principal.tenant)
    audit.record("key.revoked", detail={"key_id": key_id})
    return ApiKeyPublic.of(record)

"""/v1/audit (auditors: search, verify, checkpoint) and /v1/erasure (admins: a data subject or the tenant)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

from ingest.audit.chain import Verification
from ingest.audit.trail import AuditFilter
from ingest.erasure import ErasureReceipt, erase_subject, erase_tenant
from ingest.store.compliance_models import AuditRecord
from service.auth import require
from service.auth.errors import PermissionDenied
from service.compliance.context import AuditDep
from service.deps import PrincipalDep, StateDep
from service.jsontypes import audit_time, numbers_only

router = APIRouter(prefix="/v1", tags=["compliance"])


class AuditRecordPublic(BaseModel):
    seq: int
    time: str
    tenant: str
    subject: str
    roles: list[str]
    auth_method: str
    action: str
    outcome: str
    request_id: str | None = Field(description="the caller's X-Request-ID as sent (the server's id when it sent none)")
    server_request_id: str | None = Field(
        description="the id the server gave the request (X-Enclave-Request-ID), never chosen by the caller"
    )
    client: str | None
    document_ids: list[str]
    chunk_ids: list[str] = Field(description="the chunks shown to the caller (sources of an answer, search results)")
    model: str | None
    decision: str | None
    decision_reason: str | None
    query: str | None = Field(default=None, description="decrypted only with include_query=true; stored encrypted")
    query_encrypted: bool
    latency_ms: int | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, record: AuditRecord, query: str | None) -> AuditRecordPublic:
        return cls(
            seq=record.seq,
            time=record.time,
            tenant=record.tenant,
            subject=record.subject,
            roles=json.loads(record.roles_json),
            auth_method=record.auth_method,
            action=record.action,
            outcome=record.outcome,
            request_id=record.request_id,
            server_request_id=record.server_request_id,
            client=record.client,
            document_ids=json.loads(record.document_ids_json),
            chunk_ids=json.loads(record.chunk_ids_json),
            model=record.model,
            decision=record.decision,
            decision_reason=record.decision_reason,
            query=query,
            query_encrypted=record.query_ciphertext is not None,
            latency_ms=record.latency_ms,
            detail=json.loads(record.detail_json),
            prev_hash=record.prev_hash,
            hash=record.hash,
        )


class AuditPage(BaseModel):
    records: list[AuditRecordPublic]
    limit: int
    offset: int


class SubjectErasure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_id: str = Field(
        min_length=1, max_length=256, description="erase every document whose metadata names this data subject"
    )


class TenantErasure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(min_length=1, max_length=128, description="erase the caller's whole tenant (its id)")


def _erasure_kind(body: Any) -> str | None:
    """Which erasure a body asks for: exactly one of ``subject_id`` and ``tenant``, else none."""
    fields = body.model_fields_set if isinstance(body, BaseModel) else body if isinstance(body, dict) else ()
    asked = set(fields) & {"subject_id", "tenant"}
    return asked.pop() if len(asked) == 1 else None


# A oneOf in the schema: a body with both fields, neither, or a null is invalid there as it is here.
ErasureRequest = Annotated[
    Annotated[SubjectErasure, Tag("subject_id")] | Annotated[TenantErasure, Tag("tenant")],
    Discriminator(
        _erasure_kind, custom_error_type="exactly_one", custom_error_message="give exactly one of subject_id or tenant"
    ),
]


def _time_query(alias: str | None = None) -> Any:
    """An optional RFC 3339 time in the query string (``format: date-time``; never null there)."""
    return Query(
        alias=alias, json_schema_extra={"format": "date-time"}, description="RFC 3339 (2024-05-01T00:00:00Z), inclusive"
    )


@router.get("/audit", response_model=AuditPage, dependencies=[require("auditor", action="audit.read")])
def search_audit(
    state: StateDep,
    principal: PrincipalDep,
    audit: AuditDep,
    actor: Annotated[str | None, Query(max_length=256, description="the subject who acted")] = None,
    document: Annotated[str | None, Query(max_length=64, description="records touching this document id")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    from_: Annotated[str | SkipJsonSchema[None], _time_query("from")] = None,
    to: Annotated[str | SkipJsonSchema[None], _time_query()] = None,
    include_query: Annotated[bool, Query(description="decrypt the stored query text (itself audited)")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditPage:
    """The caller's tenant's audit records, oldest first (auditor role). Reading the trail is audited too."""
    trail = state.components.compliance.audit
    flt = AuditFilter(
        principal.tenant, actor, document, action, audit_time(from_, "from"), audit_time(to, "to"), limit, offset
    )
    records = trail.search(flt)
    audit.record(
        "audit.read",
        detail={
            "actor": actor,
            "document": document,
            "action": action,
            "from": flt.since,
            "to": flt.until,
            "returned": len(records),
            "include_query": include_query,
        },
    )
    return AuditPage(
        records=[AuditRecordPublic.of(r, trail.reveal_query(r) if include_query else None) for r in records],
        limit=limit,
        offset=offset,
    )


class Checkpoint(BaseModel):
    """A signed checkpoint as ``GET /v1/audit/checkpoint`` or ``enclave audit checkpoint`` wrote it."""

    model_config = ConfigDict(extra="allow")  # every field is signed; unknown ones are kept so the signature holds

    format: str = Field(max_length=64)
    count: int = Field(ge=0)
    head_seq: int = Field(ge=0)
    head_hash: str = Field(max_length=64)
    time: str = Field(max_length=40)
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=64)

    _numbers = numbers_only("count", "head_seq")  # JSON numbers, as the schema says (not false or "3")


class VerifyRequest(BaseModel):
    checkpoints: list[Checkpoint] = Field(
        default_factory=list, max_length=1000, description="checkpoints kept outside Enclave to hold the chain against"
    )


def _verified(state: StateDep, audit: AuditDep, checkpoints: list[dict[str, Any]]) -> dict[str, Any]:
    result: Verification = state.components.compliance.audit.verify(checkpoints)
    audit.record(
        "audit.verified",
        "ok" if result.ok else "broken",
        detail={
            "first_broken_seq": result.first_broken_seq,
            "checkpoints": len(checkpoints),
            "anchor_seq": result.anchor.seq if result.anchor else None,
        },
    )
    return result.as_dict()


@router.get("/audit/verify", dependencies=[require("auditor", action="audit.read")])
def verify_audit(state: StateDep, audit: AuditDep) -> dict[str, Any]:
    """Walk the whole chain now and hold it against the latest anchor; names the first broken record (auditor)."""
    return _verified(state, audit, [])


@router.post("/audit/verify", dependencies=[require("auditor", action="audit.read")])
def verify_audit_against(state: StateDep, audit: AuditDep, req: VerifyRequest) -> dict[str, Any]:
    """As ``GET``, and also against the checkpoints given (a truncated tail fails naming the missing records)."""
    return _verified(state, audit, [c.model_dump() for c in req.checkpoints])


@router.get("/audit/checkpoint", dependencies=[require("auditor", action="audit.read")])
def audit_checkpoint(state: StateDep, audit: AuditDep) -> dict[str, Any]:
    """A signed (count, head hash) checkpoint to store outside Enclave (auditor role)."""
    audit.record("audit.checkpoint")
    return state.components.compliance.audit.checkpoint()


@router.post("/erasure", response_model=ErasureReceipt, dependencies=[require("admin", action="erasure")])
async def erasure(state: StateDep, principal: PrincipalDep, audit: AuditDep, req: ErasureRequest) -> ErasureReceipt:
    """Erase a data subject's documents, or the caller's whole tenant (admin role); returns the receipt."""
    if isinstance(req, TenantErasure) and req.tenant != principal.tenant:
        raise PermissionDenied("you can erase only your own tenant; sign in as an admin of that tenant", param="tenant")
    with audit.failures("erasure.tenant" if isinstance(req, TenantErasure) else "erasure.subject"):
        if isinstance(req, SubjectErasure):
            return await run_in_threadpool(erase_subject, state.components, audit.actor, req.subject_id)
        return await run_in_threadpool(erase_tenant, state.components, audit.actor)

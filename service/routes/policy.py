"""/v1/policy (admin): which access policy is in force, and reload it now (a file change is picked up anyway)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.auth import Principal, require
from service.auth.dependencies import AccessDep
from service.compliance.context import AuditDep
from service.policy.port import PolicyStatus

AdminDep = Annotated[Principal, require("admin", action="manage_policy")]
router = APIRouter(prefix="/v1/policy", tags=["policy"])


class PolicyStatusPublic(BaseModel):
    revision: str | None = Field(description="SHA-256 over the policy files in force")
    loaded_at: str | None
    files: list[str]
    last_error: str | None = Field(description="why the last reload failed (the previous policy stayed in force)")
    last_error_at: str | None

    @classmethod
    def of(cls, status: PolicyStatus) -> PolicyStatusPublic:
        return cls(
            revision=status.revision,
            loaded_at=status.loaded_at,
            files=status.files,
            last_error=status.last_error,
            last_error_at=status.last_error_at,
        )


@router.get("", response_model=PolicyStatusPublic)
def policy_status(access: AccessDep, _admin: AdminDep) -> PolicyStatusPublic:
    return PolicyStatusPublic.of(access.policy.status())


@router.post("/reload", response_model=PolicyStatusPublic)
def reload_policy(access: AccessDep, _admin: AdminDep, audit: AuditDep) -> PolicyStatusPublic:
    """Recompile ``policies/`` now; a policy that does not compile is reported in ``last_error`` and not used."""
    status = access.policy.reload()
    audit.record(
        "policy.reloaded",
        "ok" if status.last_error is None else "error:policy_error",
        detail={"revision": status.revision, "error": status.last_error},
    )
    return PolicyStatusPublic.of(status)

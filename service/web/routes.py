"""Routes the web page needs besides the API it shares with every client.

``/web/config`` (public: how to sign in), ``/v1/me`` (who the credential belongs to and which views
it may open) and ``/v1/documents/{id}/passage`` (a citation's source text with the cited span;
checked and audited like a search).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from service.auth import require
from service.auth.dependencies import AccessDep
from service.auth.principal import ROLES
from service.auth.visibility import visible_document
from service.compliance.context import AuditDep
from service.deps import PrincipalDep, StateDep
from service.web.passage import Passage, document_chunks, passage_of
from service.web.signin import WebSignIn

router = APIRouter(tags=["web"])
public = APIRouter(tags=["web"])  # no credential needed: the page reads it before anyone signs in

VIEWS = {
    "ask": ("query", ("reader",)),
    "documents": ("read_document", ("reader",)),  # listing titles, ACLs and metadata: readers only
    "upload": ("ingest", ("contributor",)),
    "audit": ("audit.read", ("auditor",)),
}


class WebConfig(BaseModel):
    mode: str
    oidc: dict[str, str] | None = Field(
        description="the provider's endpoints and the page's client id; null: API keys only"
    )


class Me(BaseModel):
    tenant: str
    subject: str
    roles: list[str]
    auth_method: str
    views: dict[str, bool] = Field(description="which parts of the page the policy lets this caller use")


@public.get("/web/config", response_model=WebConfig, include_in_schema=False)
async def web_config(request: Request, state: StateDep) -> WebConfig:
    """How the page signs in: OIDC (authorisation code + PKCE) when a web client is configured, else an API key."""
    signin: WebSignIn = request.app.state.web_signin
    client = await run_in_threadpool(signin.client)
    return WebConfig(mode=state.settings.mode, oidc=client.as_dict() if client else None)


@router.get("/v1/me", response_model=Me, dependencies=[require(*ROLES, action="whoami")])
def me(principal: PrincipalDep, access: AccessDep) -> Me:
    """The caller as Enclave sees it, and which views of the web page the access policy allows it."""
    views = {name: access.decide(principal, action, roles).allowed for name, (action, roles) in VIEWS.items()}
    return Me(
        tenant=principal.tenant,
        subject=principal.subject,
        roles=list(principal.roles),
        auth_method=principal.auth_method,
        views=views,
    )


@router.get(
    "/v1/documents/{document_id}/passage",
    response_model=Passage,
    tags=["query"],
    dependencies=[require("reader", action="query")],
)
def passage(
    state: StateDep,
    principal: PrincipalDep,
    audit: AuditDep,
    document_id: str,
    start: Annotated[int, Query(ge=0, description="the citation's start")],
    end: Annotated[int, Query(gt=0, description="the citation's end")],
) -> Passage:
    """The source passage of a citation: the cited chunk with its neighbours and the cited span's place in it."""
    with audit.failures("passage.read", document_ids=[document_id]):
        document = visible_document(state.components, principal, document_id)  # else "not found", as if missing
        found = passage_of(document, document_chunks(state.components, principal, document), start, end)
    audit.record(
        "passage.read", document_ids=[document_id], chunk_ids=found.chunk_ids, detail={"start": start, "end": end}
    )
    return found

"""/v1/documents: upload (202 + job), list, show, delete."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

from ingest import documents as docs
from ingest import preamble
from ingest.erasure import ErasureReceipt, erase_document
from ingest.errors import DocumentTooLarge, InvalidRequest
from ingest.store.models import Document, DocumentStatus
from ingest.versions import submit_version
from service.auth import require
from service.auth.dependencies import AccessDep
from service.auth.uploads import authorize_document_read
from service.auth.visibility import visible_document, visible_documents
from service.compliance.context import AuditDep
from service.deps import PrincipalDep, StateDep
from service.listing import NOT_MODIFIED, LimitQuery, OffsetQuery, conditional_json, page_of
from service.schemas import (
    ACL_FIELD,
    METADATA_FIELD,
    Classification,
    DocumentList,
    DocumentPublic,
    OptionalText,
    UploadAccepted,
)

router = APIRouter(prefix="/v1/documents", tags=["documents"])


MAX_JSON_DEPTH = 32  # metadata is labels and filter values; deeper nesting is an attack, not a use


def _json_field(raw: str | None, name: str, default: Any) -> Any:
    if raw is None or raw == "":
        return default
    too_deep = InvalidRequest(f"{name} nests deeper than {MAX_JSON_DEPTH} levels; flatten it", param=name)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{name} must be valid JSON ({exc.msg})", param=name) from exc
    except RecursionError as exc:  # the decoder recurses per level: thousands of "[" exhaust the stack
        raise too_deep from exc
    if _depth(value) > MAX_JSON_DEPTH:
        raise too_deep
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value``, counted without recursion (so it cannot overflow)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in children)
    return deepest


def _acl(raw: str | None) -> dict[str, list[str]]:
    acl = _json_field(raw, "acl", {"groups": [], "users": []})
    if not isinstance(acl, dict) or set(acl) - {"groups", "users"}:
        raise InvalidRequest('acl must look like {"groups": ["g1"], "users": ["alice"]}', param="acl")
    if not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in acl.values()):
        raise InvalidRequest("acl groups and users must be lists of strings", param="acl")
    return {"groups": acl.get("groups", []), "users": acl.get("users", [])}


def _labels_of(document: Document | docs.Upload) -> dict[str, Any]:
    """The policy's ``resource``: what decides who may write or delete a stored document, or an upload."""
    metadata = document.metadata if isinstance(document, docs.Upload) else document.metadata_dict
    return {
        "collection": document.collection,
        "acl": document.acl,
        "classification": document.classification,
        "metadata": metadata,
    }


async def _read_limited(file: UploadFile, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise DocumentTooLarge(
            f"file exceeds the upload limit of {limit} bytes (ENCLAVE_MAX_UPLOAD_BYTES)", param="file"
        )
    return data


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadAccepted,
    dependencies=[require("contributor", action="ingest")],
)
async def upload_document(
    state: StateDep,
    principal: PrincipalDep,
    access: AccessDep,
    audit: AuditDep,
    file: Annotated[UploadFile, File(description="the document (PDF, DOCX, HTML, Markdown, text, …)")],
    collection: Annotated[OptionalText, Form(max_length=128)] = None,
    acl: Annotated[OptionalText, Form(**ACL_FIELD)] = None,
    classification: Annotated[Classification, Form()] = "internal",
    metadata: Annotated[OptionalText, Form(**METADATA_FIELD)] = None,
    title: Annotated[OptionalText, Form(max_length=512)] = None,
) -> UploadAccepted:
    """Store the upload and queue its ingestion; poll ``GET /v1/documents/{id}`` for progress."""
    with audit.failures("ingest.requested"):  # the accepted case is audited inside submit's transaction
        meta = _json_field(metadata, "metadata", {})
        if not isinstance(meta, dict):
            raise InvalidRequest("metadata must be a JSON object", param="metadata")
        data = await _read_limited(file, state.settings.max_upload_bytes)
        upload = docs.Upload(
            filename=file.filename or "upload",
            data=data,
            tenant=principal.tenant,
            collection=collection or state.settings.default_collection,
            title=title,
            classification=classification,
            acl=_acl(acl),
            metadata=meta,
            actor=audit.actor,
        )
        access.authorize(principal, "ingest", ("contributor",), _labels_of(upload))
        submission = await run_in_threadpool(docs.submit, state.components, upload)
    if state.worker is not None and submission.job is not None:
        state.worker.notify()
    return UploadAccepted(
        document_id=submission.document.id,
        job_id=submission.job.id if submission.job else None,
        status=submission.document.status,
        duplicate=submission.duplicate,
    )


@router.put(
    "/{document_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=UploadAccepted,
    dependencies=[require("contributor", action="ingest")],
)
async def upload_version(
    state: StateDep,
    principal: PrincipalDep,
    access: AccessDep,
    audit: AuditDep,
    document_id: str,
    file: Annotated[UploadFile, File(description="the new version of the document")],
    collection: Annotated[OptionalText, Form(max_length=128)] = None,
    acl: Annotated[OptionalText, Form(**ACL_FIELD)] = None,
    classification: Annotated[Classification | SkipJsonSchema[None], Form()] = None,
    metadata: Annotated[OptionalText, Form(**METADATA_FIELD)] = None,
    title: Annotated[OptionalText, Form(max_length=512)] = None,
) -> UploadAccepted:
    """Queue a new version of the document; readers keep the current version until the new one is ready.

    Fields left out keep the document's current values. ``409`` while a version is still being
    ingested; the same bytes as the current version change nothing (``duplicate: true``).
    """
    with audit.failures("ingest.requested", document_ids=[document_id]):
        current = visible_document(state.components, principal, document_id)  # else "not found", as if missing
        # Both sides: relabelling must not be a way to overwrite a document the caller may not write as it is.
        access.authorize(principal, "ingest", ("contributor",), _labels_of(current))
        meta = _json_field(metadata, "metadata", current.metadata_dict)
        if not isinstance(meta, dict):
            raise InvalidRequest("metadata must be a JSON object", param="metadata")
        data = await _read_limited(file, state.settings.max_upload_bytes)
        upload = docs.Upload(
            filename=file.filename or current.filename,
            data=data,
            tenant=principal.tenant,
            collection=collection or current.collection,
            title=title,
            classification=classification or current.classification,
            acl=_acl(acl) if acl else current.acl,
            metadata=meta,
            actor=audit.actor,
        )
        access.authorize(principal, "ingest", ("contributor",), _labels_of(upload))
        submission = await run_in_threadpool(submit_version, state.components, document_id, upload)
    if state.worker is not None and submission.job is not None:
        state.worker.notify()
    return UploadAccepted(
        document_id=submission.document.id,
        job_id=submission.job.id if submission.job else None,
        status=submission.document.status,
        duplicate=submission.duplicate,
    )


@router.get(
    "", response_model=DocumentList, responses=NOT_MODIFIED, dependencies=[require("reader", action="read_document")]
)
def list_documents(
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    audit: AuditDep,
    collection: Annotated[str | None, Query(max_length=128)] = None,
    status_is: Annotated[DocumentStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
    party: Annotated[
        str | None,
        Query(min_length=2, max_length=200, description="a party, short name or title the document's opening states"),
    ] = None,
) -> Response:
    """Newest first, filtered by collection, status and/or party; ``next`` links the following page, ``ETag`` for
    polling."""
    found, total = visible_documents(state.components, principal, collection, status_is, limit, offset, party)
    page = page_of(request, total, limit, offset)
    keyring = state.components.compliance.keyring
    listing = DocumentList(
        documents=[DocumentPublic.of(d, opening=preamble.of_document(keyring, d)) for d in found],
        total=total,
        limit=limit,
        offset=offset,
        next=page.next,
    )
    audit.record(
        "documents.listed",
        document_ids=[d.id for d in found],
        detail={"collection": collection, "total": total} | ({"party": party} if party else {}),
    )
    return conditional_json(request, listing)


@router.get(
    "/{document_id}",
    response_model=DocumentPublic,
    dependencies=[require("reader", "contributor", action="read_document")],
)
def get_document(
    state: StateDep, principal: PrincipalDep, access: AccessDep, audit: AuditDep, document_id: str
) -> DocumentPublic:
    """The document (readers); a contributor without the reader role: only one it uploaded, to follow its ingestion."""
    with audit.failures("document.read", document_ids=[document_id]):
        authorize_document_read(access, state.components, principal, document_id)
        # the job before the row (two reads, no shared snapshot): ingestion marks the row ready in the
        # transaction that finishes the job, so a finished job read here always comes with its ready row
        job = docs.latest_job(state.components, document_id)
        document = visible_document(state.components, principal, document_id)
    audit.record("document.read", document_ids=[document_id])
    return DocumentPublic.of(document, job, preamble.of_document(state.components.compliance.keyring, document))


@router.delete("/{document_id}", response_model=ErasureReceipt, dependencies=[require("contributor", action="delete")])
def delete_document(principal: PrincipalDep, access: AccessDep, audit: AuditDep, document_id: str) -> ErasureReceipt:
    """Erase the document: vectors, payloads, chunk rows, jobs, original and its key; returns the erasure receipt."""
    with audit.failures("document.deleted", document_ids=[document_id]):
        document = visible_document(audit.state.components, principal, document_id)  # else "not found", as if missing
        access.authorize(principal, "delete", ("contributor",), _labels_of(document))
        return erase_document(audit.state.components, audit.actor, document_id)

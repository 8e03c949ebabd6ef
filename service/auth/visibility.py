"""Document rows as the caller may see them: the index's access rule applied to ``/v1/documents``.

Listings, counts, reads and deletes answer only for documents the caller's filter admits
(tenant, classification, ACL, ethical walls); anything else is "not found", exactly like a
document that does not exist, and is never counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, func, select

from ingest import preamble, titles
from ingest.errors import NotFound
from ingest.index.port import AccessFilter, admits
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Document, DocumentStatus
from service.auth.principal import Principal


@dataclass(frozen=True)
class _Labels:
    tenant: str
    collection: str
    document_id: str
    classification: str
    acl_groups: tuple[str, ...]
    acl_users: tuple[str, ...]


def labels(document: Document) -> _Labels:
    return _labels_of_columns(
        document.tenant, document.id, document.collection, document.classification, document.acl_json
    )


def may_see(principal: Principal, document: Document) -> bool:
    return admits(principal.access(), labels(document))


def visible_document(components: Components, principal: Principal, document_id: str) -> Document:
    """The document, its title in clear.

    :raises NotFound: missing, in another tenant, or not visible to the caller (indistinguishable on purpose).
    """
    with session_scope(components.engine) as session:
        document = session.get(Document, document_id)
    if document is None or not may_see(principal, document):
        raise NotFound(f"document {document_id} not found")
    return titles.readable(components.compliance.keyring, document)


def visible_documents(
    components: Components,
    principal: Principal,
    collection: str | None,
    status: DocumentStatus | None,
    limit: int,
    offset: int,
    party: str | None = None,
) -> tuple[list[Document], int]:
    """One page of the caller's documents (titles in clear), newest first, and how many it may see in all;
    with ``party``, only those whose opening names it (``Preamble.names_party``: sealed, so read here)."""
    access = principal.access([collection] if collection else None)
    query = _filtered(select(Document), access, status)
    order = (col(Document.created_at).desc(), col(Document.id))
    keyring = components.compliance.keyring
    with session_scope(components.engine) as session:
        sql_decides = access.principal_groups is None and access.principal_user is None and not access.excluded_groups
        if sql_decides and party is None:
            total = int(session.exec(_filtered(select(func.count()).select_from(Document), access, status)).one())
            page = list(session.exec(query.order_by(*order).offset(offset).limit(limit)).all())
        elif party is None:
            # the ACL is JSON, so Python decides it, over the four columns it needs on a plain connection (no
            # ORM rows), once per distinct (collection, classification, ACL): a listing filter names no document
            columns = select(Document.id, Document.collection, Document.classification, Document.acl_json)
            decided: dict[tuple[str, str, str], bool] = {}
            ids = []
            for document_id, *shared in session.connection().execute(
                _filtered(columns, access, status).order_by(*order)
            ):
                key = (shared[0], shared[1], shared[2])
                admitted = decided.get(key) if access.document_ids is None else None
                if admitted is None:
                    admitted = decided[key] = admits(access, _labels_of_columns(access.tenant, document_id, *key))
                if admitted:
                    ids.append(document_id)
            wanted = ids[offset : offset + limit]
            by_id = {d.id: d for d in session.exec(select(Document).where(col(Document.id).in_(wanted))).all()}
            page, total = [by_id[i] for i in wanted if i in by_id], len(ids)
        else:
            rows = [d for d in session.exec(query.order_by(*order)).all() if admits(access, labels(d))]
            rows = [d for d in rows if preamble.of_document(keyring, d).names_party(party)]
            page, total = rows[offset : offset + limit], len(rows)
    return [titles.readable(keyring, d) for d in page], total


NO_ACL = '{"groups": [], "users": []}'  # the stored ACL of a document open to its whole tenant


def _labels_of_columns(tenant: str, document_id: str, collection: str, classification: str, acl_json: str) -> _Labels:
    acl: dict[str, list[str]] = {} if acl_json == NO_ACL else json.loads(acl_json)
    groups, users = tuple(acl.get("groups", ())), tuple(acl.get("users", ()))
    return _Labels(tenant, collection, document_id, classification, groups, users)


def _filtered(query: Any, access: AccessFilter, status: DocumentStatus | None) -> Any:
    """What SQL can decide: tenant, collection, status, classification (the ACL needs the JSON)."""
    query = query.where(Document.tenant == access.tenant)
    if access.collections is not None:
        query = query.where(col(Document.collection).in_(access.collections))
    if status is not None:
        query = query.where(Document.status == status)
    if access.classifications is not None:
        query = query.where(col(Document.classification).in_(access.classifications))
    return query

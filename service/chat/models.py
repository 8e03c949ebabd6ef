"""Model names portals pick: ``enclave`` (every collection the caller may see) or ``enclave:<collection>``."""

from __future__ import annotations

from sqlmodel import select

from ingest.errors import NotFound
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Document
from service.auth import Principal
from service.auth.visibility import may_see

BASE_MODEL = "enclave"
SEPARATOR = ":"


class ModelNotFound(NotFound):
    code = "model_not_found"


def visible_collections(components: Components, principal: Principal) -> list[str]:
    """Collections holding at least one document the caller may see (tenant, classification, ACL, walls)."""
    with session_scope(components.engine) as session:
        rows = session.exec(
            select(Document.collection, Document.classification, Document.acl_json)
            .where(Document.tenant == principal.tenant)
            .distinct()
        ).all()
    return sorted(
        {
            collection
            for collection, classification, acl in rows
            if may_see(principal, _labelled(principal.tenant, collection, classification, acl))
        }
    )


def _labelled(tenant: str, collection: str, classification: str, acl_json: str) -> Document:
    """A stand-in document row carrying only what the access rule looks at."""
    return Document(
        tenant=tenant,
        collection=collection,
        title="",
        filename="",
        content_hash="",
        classification=classification,
        acl_json=acl_json,
    )


def model_names(components: Components, principal: Principal) -> list[str]:
    return [BASE_MODEL] + [f"{BASE_MODEL}{SEPARATOR}{c}" for c in visible_collections(components, principal)]


def collections_for(model: str, components: Components, principal: Principal) -> list[str] | None:
    """The collections a model name searches (None: all the caller may see).

    :raises ModelNotFound: not an Enclave model name, or a collection the caller cannot see.
    """
    if model == BASE_MODEL:
        return None
    prefix = BASE_MODEL + SEPARATOR
    collection = model.removeprefix(prefix) if model.startswith(prefix) else None
    if collection and collection in visible_collections(components, principal):
        return [collection]
    raise ModelNotFound(f"model {model!r} does not exist; use {BASE_MODEL!r} or one of GET /v1/models", param="model")

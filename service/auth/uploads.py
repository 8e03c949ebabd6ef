"""Reading documents needs the reader role; a contributor without it reads back only what it uploaded.

Titles, ACLs and metadata are document content for this purpose (README "Who may call it"): a key that
may only upload must not be a way to list what everyone else stored. What it uploaded it already knows,
and it needs the document's status to follow its own ingestion, so that much stays open to it. Who
uploaded what is taken from the audit trail (``ingest.requested`` by this subject, accepted), which is
append-only and the one record of it.
"""

from __future__ import annotations

from ingest.audit.trail import AuditFilter
from ingest.runtime import Components
from service.auth.access import AccessControl
from service.auth.errors import PermissionDenied
from service.auth.principal import Principal

ACCEPTED_UPLOADS = frozenset({"accepted", "duplicate", "new_version"})  # ingest.requested outcomes that stored it


def uploaded_by(components: Components, principal: Principal, document_id: str) -> bool:
    """Whether this principal's upload (or new version) of ``document_id`` was accepted in its tenant."""
    asked = AuditFilter(principal.tenant, principal.subject, document_id, "ingest.requested", limit=1000)
    return any(record.outcome in ACCEPTED_UPLOADS for record in components.compliance.audit.search(asked))


def authorize_document_read(
    access: AccessControl, components: Components, principal: Principal, document_id: str
) -> None:
    """A reader may read any document it can see; anyone else only a document it uploaded.

    Checked before the document is looked up, so the answer is the same whether it exists or not.

    :raises PermissionDenied: neither a reader nor the document's uploader.
    """
    if access.decide(principal, "read_document", ("reader",)).allowed:
        return
    if not uploaded_by(components, principal, document_id):
        raise PermissionDenied(
            "reading documents needs the reader role (a contributor reads back only the documents it uploaded); "
            "ask an administrator to grant it"
        )

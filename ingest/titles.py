"""Document titles: redacted like the text they name, and sealed at rest like it.

A title comes from the uploader (``title``), the file name, or the format itself (HTML ``<title>``,
PDF title, e-mail subject, first heading). It is shown in listings, citations and ``Sources:`` and
embedded with every chunk (:func:`ingest.documents.context_header`), so it passes the document's
redaction rule before it is stored, shown or embedded. The document row, and a pending version's
job, hold it sealed under the document's key: erasing the document shreds its title with its text.
"""

from __future__ import annotations

import logging

from ingest.compliance import Compliance
from ingest.errors import EnclaveError
from ingest.keys.crypto import is_sealed_text, open_text, seal_text
from ingest.keys.keyring import KeyRing
from ingest.parsing.port import ParsedDocument
from ingest.store.models import Document

log = logging.getLogger(__name__)
MAX_TITLE = 512  # characters in clear; the sealed form fits ``Document.title``
WITHHELD = "[title unavailable]"


def _aad(document_id: str) -> bytes:
    return f"document:{document_id}:title".encode()


def redacted(compliance: Compliance, title: str, tenant: str, classification: str) -> str:
    """``title`` as the document's redaction rule leaves it, cut to what a document row keeps."""
    return compliance.redact_title(title, tenant, classification)[:MAX_TITLE]


def seal(key: bytes, document_id: str, title: str) -> str:
    """The stored form of a (redacted) title, bound to its document."""
    return seal_text(key, title, _aad(document_id))


def open_title(keyring: KeyRing, document_id: str, stored: str) -> str:
    """The title in clear. A row written before titles were sealed holds it in clear and is read as is.

    :raises KeyDestroyed: the document was erased. :raises DecryptionFailed: the value was altered.
    """
    if not is_sealed_text(stored):
        return stored
    return open_text(keyring.document_key(document_id), stored, _aad(document_id))


def readable(keyring: KeyRing, document: Document) -> Document:
    """A copy of the row with its title in clear, for showing; never write it back."""
    try:
        title = open_title(keyring, document.id, document.title)
    except EnclaveError as exc:  # erased meanwhile or altered: show no title rather than fail the listing
        log.warning("document.title_withheld document=%s reason=%s", document.id, exc.code)
        title = WITHHELD
    return document.model_copy(update={"title": title})


def chosen(compliance: Compliance, document: Document, parsed: ParsedDocument) -> str:
    """The redacted title of a version being ingested: the format's own title where the given one is just
    the file name, else the given one (redacted again, in case the policy changed since the upload)."""
    current = open_title(compliance.keyring, document.id, document.title)

    def redact(title: str) -> str:
        return redacted(compliance, title, document.tenant, document.classification)

    if parsed.title and (current == document.filename or current == redact(document.filename)):
        return redact(parsed.title)
    return redact(current)

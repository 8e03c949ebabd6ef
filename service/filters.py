"""Metadata filters a caller sets on /v1/query and /v1/search: document type, date range, metadata values,
and the documents it names (``document_ids``).

The store knows documents' types, dates and metadata; the index knows chunks. A filter is resolved
against the store into the set of matching document ids, which then narrows the caller's
:class:`~ingest.index.port.AccessFilter` — so it still runs *inside* the index query, with the
authorisation filter, on both the dense and the BM25 branch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from ingest.index.port import AccessFilter
from ingest.keys.keyring import KeyRing
from ingest.preamble import Preamble, of_document
from ingest.store.db import session_scope
from ingest.store.models import Document
from service.jsontypes import dates_only

CREATED_AT = "created_at"
DOCUMENT_DATE = "document_date"


class QueryFilters(BaseModel):
    """Narrow a search to some documents; every filter set must hold (AND)."""

    document_types: list[str] | None = Field(
        default=None,
        max_length=50,
        description='file extensions or MIME types, any of them: ["pdf", "docx"] or ["application/pdf"]',
    )
    date_from: date | None = Field(default=None, description="first day included (on date_field)")
    date_to: date | None = Field(default=None, description="last day included (on date_field)")
    date_field: str = Field(
        default=CREATED_AT,
        max_length=128,
        description='"created_at" (when the document was added), "document_date" (the date its opening states, '
        'e.g. "dated as of March 1, 2020") or a metadata key holding an ISO date, e.g. "signed"',
    )
    party: str | None = Field(
        default=None,
        min_length=2,
        max_length=200,
        description='a party the document\'s opening names, or its title: words in that order, any case ("Acme Corp")',
    )
    metadata: dict[str, str | int | float | bool] | None = Field(
        default=None, max_length=20, description="metadata values the document must have, key for key"
    )

    _dates = dates_only("date_from", "date_to")

    def is_empty(self) -> bool:
        return not (self.document_types or self.date_from or self.date_to or self.metadata or self.party)


def narrow(
    access: AccessFilter,
    filters: QueryFilters | None,
    store: tuple[Engine, KeyRing],
    documents: Sequence[str] | None = None,
) -> AccessFilter:
    """``access`` restricted to the named ``documents`` and to those the filters admit (unchanged when neither).

    Each only narrows: a named document outside ``access`` or the filters stays out of the search.
    """
    access = within(access, documents)
    if filters is None or filters.is_empty():
        return access
    ids = matching_documents(store, access, filters)
    if access.document_ids is not None:
        held = set(access.document_ids)
        ids = [i for i in ids if i in held]
    return dataclasses.replace(access, document_ids=tuple(ids))


def within(access: AccessFilter, documents: Sequence[str] | None) -> AccessFilter:
    """``access`` restricted to ``documents`` (``None``: unchanged), intersected with any ids it already holds."""
    if documents is None:
        return access
    named = list(dict.fromkeys(documents))
    if access.document_ids is not None:
        held = set(access.document_ids)
        named = [i for i in named if i in held]
    return dataclasses.replace(access, document_ids=tuple(named))


def matching_documents(store: tuple[Engine, KeyRing], access: AccessFilter, filters: QueryFilters) -> list[str]:
    """Ids of the tenant's documents (in the filter's collections and named documents) that every filter admits."""
    query = select(Document).where(Document.tenant == access.tenant)
    if access.collections is not None:
        query = query.where(col(Document.collection).in_(access.collections))
    if access.document_ids is not None:
        query = query.where(col(Document.id).in_(access.document_ids))
    if filters.date_field == CREATED_AT:
        if filters.date_from is not None:
            query = query.where(col(Document.created_at) >= datetime.combine(filters.date_from, time.min, UTC))
        if filters.date_to is not None:
            day_after = datetime.combine(filters.date_to + timedelta(days=1), time.min, UTC)
            query = query.where(col(Document.created_at) < day_after)
    engine, keyring = store  # the keyring opens what a document's opening states (sealed in its row)
    with session_scope(engine) as session:
        rows = session.exec(query).all()
    return [d.id for d in rows if _admits(filters, d, partial(of_document, keyring, d))]


def _admits(filters: QueryFilters, document: Document, opening: Callable[[], Preamble]) -> bool:
    """Whether ``document`` passes every filter; ``opening`` unseals what its opening states, only when asked."""
    metadata = document.metadata_dict
    if filters.document_types and not _type_matches(filters.document_types, document):
        return False
    if filters.metadata and any(metadata.get(k) != v for k, v in filters.metadata.items()):
        return False
    if filters.party and not opening().names_party(filters.party):
        return False
    if filters.date_field == DOCUMENT_DATE and (filters.date_from or filters.date_to):
        return _date_in_range(opening().date, filters.date_from, filters.date_to)
    if filters.date_field != CREATED_AT and (filters.date_from or filters.date_to):
        return _date_in_range(metadata.get(filters.date_field), filters.date_from, filters.date_to)
    return True


def _type_matches(types: list[str], document: Document) -> bool:
    extension = PurePath(document.filename).suffix.lower().lstrip(".")
    mime = (document.mime or "").lower()
    return any(t.lower().lstrip(".") in (extension, mime) for t in types)


def _date_in_range(value: Any, start: date | None, end: date | None) -> bool:
    """A metadata date (ISO ``YYYY-MM-DD``, optionally with a time) inside [start, end]; missing or unreadable: no."""
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return False
    return (start is None or day >= start) and (end is None or day <= end)

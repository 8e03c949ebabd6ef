"""Request and response models of the public API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from ingest.preamble import Preamble
from ingest.store.models import Document, Job
from service.filters import QueryFilters
from service.jsontypes import JsonBool, numbers_only


class Citation(BaseModel):
    marker: int = Field(description="the [n] number used in the answer text")
    document_id: str
    title: str
    page: int | None
    page_end: int | None = None
    start: int = Field(
        description="character offset in the document's extracted text of what the citation "
        "points at: the supporting sentence of a cited source, the chunk of an uncited one"
    )
    end: int
    chunk_start: int | None = Field(default=None, description="the whole source chunk's start (end: `chunk_end`)")
    chunk_end: int | None = None
    snippet: str
    score: float
    cited: bool = Field(
        description=(
            "true when the answer text cites this source with [marker]; false when it was supplied but not cited"
        )
    )
    ocr: bool = Field(
        default=False,
        description="true when the source text was read by OCR from a scanned page (characters may be misread)",
    )


Classification = Literal["public", "internal", "confidential", "phi", "privileged"]
# A multipart field is text or absent, never null: the schema must not offer null (which clients send as "null").
OptionalText = str | SkipJsonSchema[None]
# Upload fields that carry JSON: the schema states the object they must hold, and the request body's
# `encoding` (service.openapi) says they are sent as application/json parts.
ACL_FIELD: dict[str, Any] = {
    "description": 'who may read it: {"groups": [...], "users": [...]}',
    "json_schema_extra": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "groups": {"type": "array", "items": {"type": "string"}},
            "users": {"type": "array", "items": {"type": "string"}},
        },
    },
}
METADATA_FIELD: dict[str, Any] = {
    "description": "metadata: a JSON object (labels, dates, a data subject's id)",
    "json_schema_extra": {"type": "object"},
}


# A document id as ingest.store.models.new_id makes it (uuid4 hex); the same to Python's re, pydantic's Rust
# regex engine and JSON Schema validators.
DOCUMENT_ID = r"^[0-9a-f]{32}$"
MAX_SCOPE = 100
DocumentId = Annotated[str, Field(pattern=DOCUMENT_ID, max_length=32)]
DocumentScope = Annotated[
    list[DocumentId] | None,
    Field(
        min_length=1,
        max_length=MAX_SCOPE,
        description="search only these documents (ids as POST /v1/documents returned them), inside everything "
        "else that limits the search; an id the caller may not see answers 404 like an unknown document",
    ),
]


def _names_a_document(value: Any) -> Any:
    if isinstance(value, list) and not value:
        raise ValueError("must name at least one document id; leave it out to search every document you may see")
    return value


def scope_named(*fields: str) -> Any:
    """A model validator: an empty ``document_ids`` is refused with a message saying what to send instead."""
    return field_validator(*fields, mode="before")(_names_a_document)


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int | None = Field(default=None, ge=1, le=50)
    collections: list[str] | None = None
    filters: QueryFilters | None = Field(default=None, description="document type, date range, metadata values")
    document_ids: DocumentScope = None
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    stream: JsonBool = False

    _numbers = numbers_only("k")
    _scope = scope_named("document_ids")


Grounding = Literal["quoted", "verified", "not_found"]


class SentenceSource(BaseModel):
    marker: int = Field(description="the citation ([marker]) this support comes from")
    start: int = Field(description="the supporting sentence's span in the document's extracted text")
    end: int
    quote: str = Field(description="the supporting sentence as the source writes it")


class AnswerSentence(BaseModel):
    text: str = Field(description="the sentence as shown in `answer`, markers included")
    grounding: Literal["quoted", "verified"] = Field(
        description="quoted: copied verbatim from the source; verified: generated, its claims found in the sources"
    )
    sources: list[SentenceSource]


class QueryResponse(BaseModel):
    answer: str
    found: bool
    citations: list[Citation]
    model: str | None = Field(default=None, description="the generator consulted; null when none was (quoted answers)")
    dropped_citations: int = Field(default=0, description="markers that pointed at no supplied source")
    grounding: Grounding = Field(
        default="not_found",
        description="how the answer was made: quoted from the sources, "
        "generated and verified against them, or not found",
    )
    sentences: list[AnswerSentence] = Field(
        default_factory=list, description="each answer sentence and what supports it"
    )
    unsupported_removed: int = Field(
        default=0, description="generated sentences removed: no cited source supports them"
    )


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(default=10, ge=1, le=100)
    collections: list[str] | None = None
    filters: QueryFilters | None = Field(default=None, description="document type, date range, metadata values")
    document_ids: DocumentScope = None
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"

    _numbers = numbers_only("k")
    _scope = scope_named("document_ids")


class SearchResponse(BaseModel):
    results: list[Citation]


class JobPublic(BaseModel):
    id: str
    status: str
    attempts: int
    error: str | None
    error_code: str | None
    pages_done: int
    chunks_done: int
    version: int = Field(default=1, description="the document version this job ingests")

    @classmethod
    def of(cls, job: Job) -> JobPublic:
        return cls(
            id=job.id,
            status=job.status,
            attempts=job.attempts,
            error=job.error,
            error_code=job.error_code,
            pages_done=job.pages_done,
            chunks_done=job.chunks_done,
            version=job.version,
        )


class DocumentOpening(BaseModel):
    """What the document's opening states about itself (contracts: "X AGREEMENT ... dated as of ... between
    A, a Delaware corporation ("A"), and B ..."); read at ingest from the redacted text, sealed at rest."""

    title: str = Field(default="", description='the title its opening gives, e.g. "Co-Branding Agreement"')
    parties: list[str] = Field(default_factory=list, description="the parties its opening names")
    aliases: list[str] = Field(default_factory=list, description='the short names they are defined as ("PrimeCall")')
    date: str | None = Field(default=None, description="the ISO date its opening states")
    date_kind: str | None = Field(default=None, description='"effective" (effective as of) or "dated"')

    @classmethod
    def of(cls, opening: Preamble) -> DocumentOpening | None:
        return None if opening.empty else cls(**opening.public())


class DocumentPublic(BaseModel):
    id: str
    title: str
    filename: str
    collection: str
    status: str
    mime: str | None
    pages: int | None
    chunk_count: int
    content_hash: str
    size_bytes: int
    classification: str
    acl: dict[str, list[str]]
    metadata: dict[str, Any]
    error: str | None
    error_code: str | None
    created_at: datetime
    updated_at: datetime
    job: JobPublic | None = None
    version: int = Field(default=1, description="the version readers see (a newer one may be in `job`)")
    parent_id: str | None = Field(default=None, description="the e-mail this document was attached to")
    opening: DocumentOpening | None = Field(
        default=None, description="title, parties and date its opening states (null where it states none)"
    )

    @classmethod
    def of(cls, doc: Document, job: Job | None = None, opening: Preamble | None = None) -> DocumentPublic:
        return cls(
            id=doc.id,
            title=doc.title,
            filename=doc.filename,
            collection=doc.collection,
            status=doc.status,
            mime=doc.mime,
            pages=doc.pages,
            chunk_count=doc.chunk_count,
            content_hash=doc.content_hash,
            size_bytes=doc.size_bytes,
            classification=doc.classification,
            acl=doc.acl,
            metadata=doc.metadata_dict,
            error=doc.error,
            error_code=doc.error_code,
            created_at=doc.created_at,
            updated_at=doc.updated_at,
            job=JobPublic.of(job) if job else None,
            version=doc.version,
            parent_id=doc.parent_id,
            opening=DocumentOpening.of(opening) if opening is not None else None,
        )


class UploadAccepted(BaseModel):
    document_id: str
    job_id: str | None
    status: str
    duplicate: bool


class DocumentList(BaseModel):
    documents: list[DocumentPublic]
    total: int = Field(description="documents matching the filters, over all pages")
    limit: int = 100
    offset: int = 0
    next: str | None = Field(default=None, description="URL of the next page, or null when this is the last")


class Health(BaseModel):
    status: str
    components: dict[str, str] = {}

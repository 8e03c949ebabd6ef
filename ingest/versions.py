"""Document versions: where each version's original lives, and what a new version changes.

A new version (``PUT /v1/documents/{id}``) does not touch the document's row until it is ready:
its file name, hash, ACL, classification and metadata wait on the job (``Job.upload_json``) and
its original waits under its own key, so readers keep the current version, and a failed new
version leaves the document exactly as it was.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import takewhile
from typing import Any

from ingest.chunking import ChunkSpan
from ingest.parsing.port import ParsedDocument
from ingest.store.models import Document, Job


@dataclass(frozen=True)
class PendingUpload:
    """A new version's own fields, applied to the document row when the version is ready."""

    filename: str
    title: str
    content_hash: str
    size_bytes: int
    classification: str
    acl: dict[str, list[str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> PendingUpload:
        return cls(**json.loads(raw))


def blob_key(document_id: str, version: int) -> str:
    """Version 1 lives under the document id; a newer version under ``<id>.v<n>`` until it is ready."""
    return document_id if version <= 1 else f"{document_id}.v{version}"


def target_of(document: Document, job: Job) -> Document:
    """The document as it will be once ``job`` is done: its version and, for a new version, its new fields."""
    if job.upload_json is None:
        return document.model_copy(update={"version": max(job.version, document.version)})
    pending = PendingUpload.from_json(job.upload_json)
    return document.model_copy(
        update={
            "version": job.version,
            "filename": pending.filename,
            "title": pending.title,
            "content_hash": pending.content_hash,
            "size_bytes": pending.size_bytes,
            "classification": pending.classification,
            "acl_json": json.dumps(pending.acl),
            "metadata_json": json.dumps(pending.metadata),
        }
    )


def live_version(document: Document) -> int | None:
    """The version readers see now: None while the document has never been ready."""
    return document.version if document.chunk_count > 0 else None


def ocr_flags(parsed: ParsedDocument, spans: Sequence[ChunkSpan]) -> list[bool]:
    """Per chunk: does any of its text come from an OCR'd element?"""
    if not any(element.ocr for element in parsed.elements):
        return [False] * len(spans)
    ends = [element.end for element in parsed.elements]
    flags = []
    for span in spans:
        i = bisect_left(ends, span.start + 1)  # the first element ending after the chunk starts
        end = span.end
        covering = takewhile(lambda e: e.start < end, parsed.elements[i:])  # noqa: B023 - consumed at once
        flags.append(any(e.ocr for e in covering))
    return flags

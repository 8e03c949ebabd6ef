"""New versions of a document, attachments as child documents, and OCR marks carried to citations.

What a user would notice if these broke: a search during an update that returns the contract twice
(old and new clauses side by side) or not at all, a failed update that takes the working version
down, an e-mail's attachment that is never searchable, or a citation that hides that its text was
guessed by OCR.
"""

from __future__ import annotations

import threading
import time
from email.message import EmailMessage

import pytest
from sqlmodel import select

from ingest import documents as docs
from ingest.blobs import blob_key
from ingest.errors import Conflict, NotFound
from ingest.index.port import AccessFilter, VectorIndex
from ingest.index.swap import AtomicSwapIndex
from ingest.runtime import Components
from ingest.store.db import session_scope
from ingest.store.models import Chunk, Document, JobStatus
from ingest.versions import submit_version
from ingest.worker import drain
from service.retrieval import citation
from tests.conftest import DOCS
from tests.ingest.conftest import TENANT, contract, upload


def _ingested(site: Components, up: docs.Upload) -> Document:
    submission = docs.submit(site, up)
    drain(site)
    return docs.get_document(site, TENANT, submission.document.id)


def _chunks(site: Components, document_id: str) -> list[Chunk]:
    with session_scope(site.engine) as session:
        return list(session.exec(select(Chunk).where(Chunk.document_id == document_id).order_by(Chunk.ordinal)).all())


def _visible(site: Components, document_id: str, query: str = "agreement") -> list[int]:
    """The version of every chunk of the document a reader finds (all of them: the limit exceeds the count)."""
    access = AccessFilter(tenant=TENANT, document_ids=(document_id,))
    dense, sparse = site.embedder.embed_query(query), site.sparse.embed_query(query)
    return [c.record.version for c in site.index.search(dense, sparse, access, 1000, "dense").chunks]


class _SlowWrites:
    """Fault injection at the index boundary: every write takes a while, as on a busy disk."""

    def __init__(self, inner: VectorIndex) -> None:
        self.inner = inner

    def upsert(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return self.inner.upsert(*args, **kwargs)

    def delete_document(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.3)
        return self.inner.delete_document(*args, **kwargs)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_a_reader_during_the_swap_sees_exactly_one_whole_version(site: Components) -> None:
    first = _ingested(site, upload(contract(0)))
    assert isinstance(site.index, AtomicSwapIndex)
    site.index.inner = _SlowWrites(site.index.inner)  # type: ignore[assignment]  # widens the swap's window
    old_count = first.chunk_count
    dense, sparse = site.embedder.embed_query("agreement"), site.sparse.embed_query("agreement")
    access = AccessFilter(tenant=TENANT, document_ids=(first.id,))
    seen: list[tuple[tuple[int, ...], int]] = []  # (versions in one result, chunks in it)
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            chunks = site.index.search(dense, sparse, access, 1000, "dense").chunks
            seen.append((tuple(sorted({c.record.version for c in chunks})), len(chunks)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        submit_version(site, first.id, upload(contract(1), name=first.filename))
        drain(site)
    finally:
        done.set()
        reader.join()
    second = docs.get_document(site, TENANT, first.id)
    assert second.version == 2 and second.status == "ready"
    counts = {1: old_count, 2: second.chunk_count}
    assert {versions for versions, _ in seen} >= {(1,), (2,)}, "the reader ran before and after the swap"
    for versions, count in seen:
        assert len(versions) == 1, f"one version at a time, saw versions {versions}"
        assert count == counts[versions[0]], "a whole version: never part of one, never nothing"


def test_a_new_version_replaces_chunks_rows_original_and_fields(site: Components) -> None:
    first = _ingested(site, upload(contract(0)))
    new_bytes = contract(1).read_bytes()
    queued = submit_version(site, first.id, upload(contract(1), acl={"groups": ["legal"], "users": []}))
    assert queued.job is not None and queued.job.version == 2 and not queued.duplicate
    assert docs.get_document(site, TENANT, first.id).version == 1, "the row changes only when the version is ready"
    drain(site)
    second = docs.get_document(site, TENANT, first.id)
    assert (second.version, second.filename, second.acl["groups"]) == (2, contract(1).name, ["legal"])
    assert second.content_hash == docs.content_hash(new_bytes) and site.blobs.get(first.id) == new_bytes
    with pytest.raises(FileNotFoundError):
        site.blobs.get(blob_key(first.id, 2))
    rows = _chunks(site, first.id)
    assert len(rows) == second.chunk_count == site.index.count(AccessFilter(tenant=TENANT, document_ids=(first.id,)))
    assert rows[0].id == docs.chunk_id(first.id, 2, 0) and set(_visible(site, first.id)) == {2}
    text = contract(1).read_text(encoding="utf-8")
    assert all(0 <= r.start < r.end <= len(text) for r in rows)


def test_a_failed_new_version_leaves_the_current_one_untouched(site: Components) -> None:
    first = _ingested(site, upload(contract(0)))
    rows_before = [(r.id, r.start, r.end) for r in _chunks(site, first.id)]
    bad = (DOCS / "bad" / "invalid.pdf").read_bytes()
    queued = submit_version(site, first.id, upload(data=bad, name="contract-v2.pdf"))
    drain(site)
    after = docs.get_document(site, TENANT, first.id)
    assert queued.job is not None and docs.latest_job(site, first.id).status == JobStatus.failed  # type: ignore[union-attr]
    assert (after.status, after.version, after.filename, after.chunk_count) == (
        "ready",
        1,
        first.filename,
        first.chunk_count,
    )
    assert after.error_code == "corrupt_document" and "version 2 was not ingested" in (after.error or "")
    assert [(r.id, r.start, r.end) for r in _chunks(site, first.id)] == rows_before
    assert set(_visible(site, first.id)) == {1} and len(_visible(site, first.id)) == first.chunk_count
    assert site.blobs.get(first.id) == contract(0).read_bytes()
    with pytest.raises(FileNotFoundError):
        site.blobs.get(blob_key(first.id, 2))


def test_new_version_rules_same_bytes_busy_and_missing(site: Components) -> None:
    first = _ingested(site, upload(contract(0)))
    same = submit_version(site, first.id, upload(contract(0)))
    assert same.duplicate and same.job is None
    submit_version(site, first.id, upload(contract(1)))
    with pytest.raises(Conflict, match="still being ingested"):
        submit_version(site, first.id, upload(contract(2)))
    with pytest.raises(NotFound):
        submit_version(site, "no-such-document", upload(contract(2)))
    with pytest.raises(NotFound):  # another tenant's document is as good as missing
        submit_version(site, first.id, upload(contract(2), tenant="other"))


def _email_with_attachments() -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "billing@vendor.example",
        "ap@firm.example",
        "Invoice and terms",
    )
    message.set_content("Please find the signed terms attached.\n\nRegards, Billing")
    message.add_attachment(
        (DOCS / "pdf" / "crazyones.pdf").read_bytes(), maintype="application", subtype="pdf", filename="crazyones.pdf"
    )
    message.add_attachment(
        b"item,amount\nlicence,1200\nsupport,300\n", maintype="text", subtype="csv", filename="invoice.csv"
    )
    return message.as_bytes()


def test_email_attachments_become_child_documents_with_the_parents_access(site: Components) -> None:
    acl, mail = {"groups": ["finance"], "users": []}, _email_with_attachments()
    parent = _ingested(site, upload(data=mail, name="mail.eml", acl=acl, classification="confidential"))
    drain(site)  # children queued by the parent's job
    assert parent.status == "ready" and parent.mime == "message/rfc822" and parent.title == "Invoice and terms"
    with session_scope(site.engine) as session:
        children = list(session.exec(select(Document).where(Document.parent_id == parent.id)).all())
    assert sorted(c.filename for c in children) == ["crazyones.pdf", "invoice.csv"]
    for child in children:
        assert (child.status, child.tenant, child.collection) == ("ready", TENANT, "c"), child.error
        assert (child.acl, child.classification) == (acl, "confidential")
    pdf = next(c for c in children if c.filename == "crazyones.pdf")
    assert pdf.pages == 1 and {r.page for r in _chunks(site, pdf.id)} == {1}
    again = docs.submit(site, upload(data=mail, name="mail.eml", acl=acl, classification="confidential"))
    assert again.duplicate, "the same message again is one document, and its children are not duplicated"


def test_ocr_chunks_are_marked_in_rows_index_and_citations(site: Components) -> None:
    scanned = _ingested(site, upload(DOCS / "scanned" / "c03-29.pdf"))
    born_digital = _ingested(site, upload(DOCS / "pdf" / "crazyones.pdf"))
    assert scanned.status == "ready" and all(r.ocr and r.page == 1 for r in _chunks(site, scanned.id))
    assert not any(r.ocr for r in _chunks(site, born_digital.id))
    query = "a good going-over in the morning from old Miss Watson"
    access = AccessFilter(tenant=TENANT)
    found = site.index.search(site.embedder.embed_query(query), site.sparse.embed_query(query), access, 5).chunks
    top = citation(found[0], 1, 300)
    assert top.document_id == scanned.id and top.ocr and top.page == 1
    assert not citation(next(c for c in found if c.record.document_id == born_digital.id), 2, 300).ocr

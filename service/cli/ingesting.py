"""The work behind ``enclave ingest`` and ``enclave status`` (kept apart from argument parsing)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress
from rich.table import Table
from sqlmodel import func, select

from ingest import documents as docs
from ingest.config import Settings
from ingest.errors import EnclaveError
from ingest.runtime import Components
from ingest.store.db import create_schema, make_engine, session_scope
from ingest.store.models import Chunk, Document, Job
from ingest.worker import run_worker


@dataclass(frozen=True)
class FileResult:
    path: Path
    outcome: str  # "ok" | "skipped" | "failed"
    chunks: int = 0
    reason: str | None = None
    document_id: str | None = None


SYSTEM_FILES = {"thumbs.db", "desktop.ini", ".ds_store"}


def ingest_files(
    components: Components, files: list[Path], collection: str, classification: str, progress: Progress
) -> list[FileResult]:
    """Submit every file, then process the queue (parsing ahead, batching embeddings across files).

    Never stops at the first failure: each file ends ``ok``, ``skipped`` (a duplicate, a lock or
    system file) or ``failed``, with the reason; attachments of e-mails get rows of their own.
    """
    results: dict[Path, FileResult] = {}
    submitted: dict[str, Path] = {}
    for path in files:
        outcome = _submit_one(components, path, collection, classification)
        if isinstance(outcome, FileResult):
            results[path] = outcome
        else:
            submitted[outcome] = path
    with progress:
        task = progress.add_task("ingesting", total=len(submitted))

        def advance(job: Job) -> None:
            if job.document_id in submitted:
                progress.advance(task)

        run_worker(components, until_empty=True, poll_s=0.25, on_finished=advance)  # waits out retries' backoff
    ordered = [results.get(path) or _outcome(components, path, doc_id) for path, doc_id in _by_path(files, submitted)]
    return [row for result in ordered for row in (result, *_attachment_rows(components, result))]


def _by_path(files: list[Path], submitted: dict[str, Path]) -> list[tuple[Path, str | None]]:
    ids = {path: doc_id for doc_id, path in submitted.items()}
    return [(path, ids.get(path)) for path in files]


def _submit_one(components: Components, path: Path, collection: str, classification: str) -> FileResult | str:
    """The document id of the queued job, or the file's final result when it was not queued."""
    if path.name.lower() in SYSTEM_FILES or path.name.startswith("~$"):
        return FileResult(path, "skipped", reason="operating-system or office lock file, not a document")
    upload = docs.Upload(
        filename=path.name,
        data=path.read_bytes(),
        tenant=components.settings.default_tenant,
        collection=collection,
        classification=classification,
        title=path.name,
    )
    try:
        submission = docs.submit(components, upload)
    except EnclaveError as exc:
        return FileResult(path, "failed", reason=exc.message)
    if submission.duplicate:
        existing = submission.document
        return FileResult(
            path,
            "skipped",
            existing.chunk_count,
            f"same content as document {existing.id} ({existing.filename}), already ingested",
        )
    return submission.document.id


def _outcome(components: Components, path: Path, document_id: str | None) -> FileResult:
    if document_id is None:
        return FileResult(path, "failed", reason="not processed")
    document = docs.get_document(components, components.settings.default_tenant, document_id)
    if document.status == "ready":
        return FileResult(path, "ok", document.chunk_count, document_id=document.id)
    job = docs.latest_job(components, document.id)
    pending = f"still {job.status} (attempt {job.attempts}); run `enclave worker`" if job else document.status
    reason = document.error or pending
    return FileResult(path, "failed", reason=reason, document_id=document.id)


def _attachment_rows(components: Components, parent: FileResult) -> list[FileResult]:
    """One row per attachment of an ingested e-mail (``mail.eml › invoice.pdf``)."""
    if parent.document_id is None:
        return []
    with session_scope(components.engine) as session:
        children = session.exec(select(Document).where(Document.parent_id == parent.document_id)).all()
    return [
        _outcome(components, parent.path.with_name(f"{parent.path.name} › {child.filename}"), child.id)
        for child in children
    ]


def status_table(settings: Settings) -> Table:
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    with session_scope(engine) as session:
        doc_status = Counter(dict(session.exec(select(Document.status, func.count()).group_by(Document.status)).all()))
        job_status = Counter(dict(session.exec(select(Job.status, func.count()).group_by(Job.status)).all()))
        chunks = session.exec(select(func.count()).select_from(Chunk)).one()
    engine.dispose()
    table = Table("what", "value")
    table.add_row("data directory", str(settings.data_dir.resolve()))
    table.add_row("documents", ", ".join(f"{k}: {v}" for k, v in sorted(doc_status.items())) or "0")
    table.add_row("chunks", str(chunks))
    table.add_row("jobs", ", ".join(f"{k}: {v}" for k, v in sorted(job_status.items())) or "0")
    table.add_row("store", settings.resolved_database_url.split("://")[0])
    table.add_row(
        "index",
        f"{settings.index.backend} ({settings.index_dir if settings.index.backend == 'edge' else settings.index.url})",
    )
    table.add_row("embedder", str(settings.embedder.model_path or "all-MiniLM-L6-v2 (packaged)"))
    table.add_row(
        "generator", settings.generator.base_url or "llama.cpp server with SmolLM2-135M-Instruct (supervised)"
    )
    return table

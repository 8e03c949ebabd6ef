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
from ingest.worker import worker_name


@dataclass(frozen=True)
class FileResult:
    path: Path
    outcome: str  # "ok" | "skipped" | "failed"
    chunks: int = 0
    reason: str | None = None


def ingest_files(components: Components, files: list[Path], collection: str, classification: str, progress: Progress) -> list[FileResult]:
    """Submit and process each file in turn, showing progress; never stops at the first failure."""
    results: list[FileResult] = []
    with progress:
        task = progress.add_task("ingesting", total=len(files))
        for path in files:
            progress.update(task, description=f"ingesting {path.name}")
            results.append(_ingest_one(components, path, collection, classification))
            progress.advance(task)
    return results


def _ingest_one(components: Components, path: Path, collection: str, classification: str) -> FileResult:
    upload = docs.Upload(filename=path.name, data=path.read_bytes(), tenant=components.settings.default_tenant,
                         collection=collection, classification=classification, title=path.name)
    try:
        submission = docs.submit(components, upload)
    except EnclaveError as exc:
        return FileResult(path, "failed", reason=exc.message)
    if submission.duplicate:
        return FileResult(path, "skipped", submission.document.chunk_count, "already ingested (same content)")
    while docs.job_is_active(docs.latest_job(components, submission.document.id)):
        if docs.process_next(components, worker_name()) is None:
            break
    document = docs.get_document(components, upload.tenant, submission.document.id)
    if document.status == "ready":
        return FileResult(path, "ok", document.chunk_count)
    return FileResult(path, "failed", reason=document.error or document.status)


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
    table.add_row("index", f"{settings.index.backend} ({settings.index_dir if settings.index.backend == 'edge' else settings.index.url})")
    table.add_row("embedder", str(settings.embedder.model_path or "all-MiniLM-L6-v2 (packaged)"))
    table.add_row("generator", settings.generator.base_url or "llama.cpp server with SmolLM2-135M-Instruct (supervised)")
    return table

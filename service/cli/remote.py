"""``enclave --url URL --api-key KEY ask|ingest|status``: the CLI against a running server, through the client."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress
from rich.table import Table

from service.cli.ingesting import FileResult
from service.client import EnclaveAPIError, EnclaveClient
from service.schemas import QueryResponse

REMOTE_COMMANDS = frozenset({"ask", "ingest", "status"})
STATUSES = ("queued", "processing", "ready", "failed")


@dataclass
class Remote:
    """Where the CLI's remote mode talks to; ``url`` None means the local data directory."""

    url: str | None = None
    api_key: str | None = None

    def client(self) -> EnclaveClient:
        assert self.url is not None
        return EnclaveClient(self.url, self.api_key)


REMOTE = Remote()


def ask(remote: Remote, question: str, k: int | None) -> QueryResponse:
    with remote.client() as client:
        return client.query(question, k=k)


def ingest_files(
    remote: Remote, files: list[Path], collection: str | None, classification: str, progress: Progress
) -> list[FileResult]:
    """Upload every file, then wait for each to be ready or failed; never stops at the first failure."""
    with remote.client() as client, progress:
        task = progress.add_task("uploading", total=len(files) * 2)
        accepted: list[tuple[Path, str | FileResult]] = []
        for path in files:
            progress.update(task, description=f"uploading {path.name}")
            accepted.append((path, _upload(client, path, collection, classification)))
            progress.advance(task)
        results: list[FileResult] = []
        for path, outcome in accepted:
            progress.update(task, description=f"ingesting {path.name}")
            results.append(outcome if isinstance(outcome, FileResult) else _await(client, path, outcome))
            progress.advance(task)
    return results


def _upload(client: EnclaveClient, path: Path, collection: str | None, classification: str) -> str | FileResult:
    try:
        accepted = client.upload(path, collection=collection, classification=classification, title=path.name)
    except EnclaveAPIError as exc:
        return FileResult(path, "failed", reason=exc.message)
    if accepted.duplicate:
        return FileResult(path, "skipped", reason="already ingested (same content)")
    return accepted.document_id


def _await(client: EnclaveClient, path: Path, document_id: str) -> FileResult:
    try:
        document = client.wait_for_document(document_id)
    except (EnclaveAPIError, TimeoutError) as exc:
        return FileResult(path, "failed", reason=str(exc))
    if document.status == "ready":
        return FileResult(path, "ok", document.chunk_count)
    return FileResult(path, "failed", reason=document.error or document.status)


def status_table(remote: Remote) -> Table:
    """The server's readiness and its documents by status (for the caller's tenant)."""
    with remote.client() as client:
        ready = client.readiness()
        counts = Counter({s: client.list_documents(status=s, limit=1).total for s in STATUSES})
    table = Table("what", "value")
    table.add_row("server", str(remote.url))
    table.add_row("status", ready.status)
    for name, state in sorted(ready.components.items()):
        table.add_row(name, state)
    table.add_row("documents", ", ".join(f"{k}: {v}" for k, v in counts.items() if v) or "0")
    return table

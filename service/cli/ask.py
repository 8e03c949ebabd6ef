"""``enclave ask``: a question answered from the ingested documents, with its citations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from ingest.config import Settings
from service.cli import remote
from service.cli.shared import configured_settings
from service.schemas import QueryRequest, QueryResponse

out = Console()


def ask(
    question: Annotated[str, typer.Argument(help="your question")],
    k: Annotated[int | None, typer.Option(help="sources to give the model")] = None,
) -> None:
    """Answer a question from the ingested documents and print the citations."""
    settings = configured_settings()
    response = remote.ask(remote.REMOTE, question, k) if remote.REMOTE.url else _ask_here(settings, question, k)
    out.print(response.answer)
    removed = response.unsupported_removed
    out.print(f"  ({response.grounding}" + (f", {removed} unsupported sentence(s) removed)" if removed else ")"))
    for c in response.citations:
        page = f" p. {c.page}" if c.page else ""
        flag = "" if c.cited else " (supplied, not cited)"
        out.print(f"  [{c.marker}] {c.title}{page} chars {c.start}-{c.end}{flag}: {c.snippet[:120]!r}")


def _ask_here(settings: Settings, question: str, k: int | None) -> QueryResponse:
    """The answer from the local data directory, audited as the local admin."""
    from service.auth import Principal  # lazy: the read path (FastAPI, auth, policy) is for `ask` only
    from service.auth.actor import actor_of  # lazy: as above
    from service.compliance.context import RequestAudit  # lazy: as above
    from service.state import build_state  # lazy: as above

    state = build_state(settings, start_worker=False)
    try:
        principal = Principal(tenant=settings.default_tenant, subject="cli", roles=("admin",), auth_method="local")
        audit = RequestAudit(state, actor_of(principal))
        return state.answerer.audited(principal, QueryRequest(query=question, k=k), audit)
    finally:
        state.close()

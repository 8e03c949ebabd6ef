"""``enclave ask``: a question answered from the ingested documents, with its citations."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from service.auth import Principal
from service.auth.actor import actor_of
from service.cli import remote
from service.cli.shared import configured_settings
from service.compliance.context import RequestAudit
from service.schemas import QueryRequest
from service.state import build_state

out = Console()


def ask(
    question: Annotated[str, typer.Argument(help="your question")],
    k: Annotated[int | None, typer.Option(help="sources to give the model")] = None,
) -> None:
    """Answer a question from the ingested documents and print the citations."""
    settings = configured_settings()
    if remote.REMOTE.url:
        response = remote.ask(remote.REMOTE, question, k)
    else:
        state = build_state(settings, start_worker=False)
        try:
            principal = Principal(tenant=settings.default_tenant, subject="cli", roles=("admin",), auth_method="local")
            audit = RequestAudit(state, actor_of(principal))
            response = state.answerer.audited(principal, QueryRequest(query=question, k=k), audit)
        finally:
            state.close()
    out.print(response.answer)
    removed = response.unsupported_removed
    out.print(f"  ({response.grounding}" + (f", {removed} unsupported sentence(s) removed)" if removed else ")"))
    for c in response.citations:
        page = f" p. {c.page}" if c.page else ""
        flag = "" if c.cited else " (supplied, not cited)"
        out.print(f"  [{c.marker}] {c.title}{page} chars {c.start}-{c.end}{flag}: {c.snippet[:120]!r}")

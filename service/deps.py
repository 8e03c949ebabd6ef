"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest.errors import ServiceUnavailable
from service.auth import Principal, current_principal
from service.state import AppState


async def get_state(request: Request) -> AppState:
    """The app state. ``async`` because it only reads an attribute: a sync dependency costs every request a
    hop to the thread pool and back (bench/profile_query)."""
    state: AppState | None = getattr(request.app.state, "enclave", None)
    if state is None:
        raise ServiceUnavailable("Enclave is still starting; retry in a few seconds")
    return state


StateDep = Annotated[AppState, Depends(get_state)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]

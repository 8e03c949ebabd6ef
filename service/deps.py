"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest.errors import ServiceUnavailable
from service.auth import Principal, current_principal
from service.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState | None = getattr(request.app.state, "enclave", None)
    if state is None:
        raise ServiceUnavailable("Enclave is still starting; retry in a few seconds")
    return state


StateDep = Annotated[AppState, Depends(get_state)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]

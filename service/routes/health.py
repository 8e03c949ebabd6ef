"""Liveness (/healthz) and readiness (/readyz: index, store, embedder, generator)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.schemas import Health
from service.state import AppState

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


def _check(state: AppState) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with state.components.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["store"] = "ok"
    except Exception:  # noqa: BLE001 - readiness reports, it does not raise
        checks["store"] = "unavailable"
    checks["index"] = "ok" if state.components.index.healthy() else "unavailable"
    checks["embedder"] = "ok" if state.components.embedder.dim > 0 else "unavailable"
    checks["generator"] = "ok" if state.generator.healthy() else "unavailable"
    return checks


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(request: Request) -> Health | JSONResponse:
    """Every component answers; 503 with the failing ones otherwise."""
    state: AppState | None = getattr(request.app.state, "enclave", None)
    if state is None:
        return JSONResponse(status_code=503, content={"status": "starting", "components": {}})
    checks = _check(state)
    if all(v == "ok" for v in checks.values()):
        return Health(status="ready", components=checks)
    return JSONResponse(status_code=503, content={"status": "unavailable", "components": checks})

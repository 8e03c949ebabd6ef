"""What the command modules share: the process set-up every command starts with, and opening the store."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from sqlalchemy.engine import Engine

from ingest.compliance import Compliance, build_compliance
from ingest.config import Settings, get_settings
from ingest.redaction.presidio_detector import PresidioDetector
from ingest.store.db import create_schema, make_engine
from service.observability.logs import configure_logging
from service.observability.tracing import configure_tracing


def configured_settings() -> Settings:
    """The settings, with offline model loading, logging and tracing set up for this process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    settings = get_settings()
    configure_logging(settings)
    configure_tracing(settings)
    return settings


def store_engine(settings: Settings) -> Engine:
    """The relational store, its schema made ready (only the store: no index, no models)."""
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return engine


def open_compliance(settings: Settings) -> Compliance:
    """The audit trail and key ring over the relational store and the key file (no index, no models)."""
    return build_compliance(settings, store_engine(settings), PresidioDetector())  # the detector stays cold here


def files_under(paths: list[Path], recursive: bool) -> list[Path]:
    """The files named, and those in the folders named (hidden ones skipped).

    :raises typer.BadParameter: a path that does not exist.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            pattern = path.rglob("*") if recursive else path.glob("*")
            found.extend(sorted(p for p in pattern if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            found.append(path)
        else:
            raise typer.BadParameter(f"{path} does not exist", param_hint="PATH")
    return found

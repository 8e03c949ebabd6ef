"""Settings of a site that can be backed up: backup key, erasure ledger and master key in a ``secrets`` folder
beside the data directories, shared by every site made under the same ``root`` (so an archive of one restores
into another)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.backup.archive import write_key_file
from ingest.config import Settings
from tests.conftest import make_settings


def backup_settings(root: Path, name: str, *, backup: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    secrets = root / "secrets"
    secrets.mkdir(exist_ok=True)
    key_file = secrets / "backup.key"
    if not key_file.exists():
        write_key_file(key_file)
    return make_settings(
        root / name,
        compliance={"master_key_file": secrets / "master.key"},
        backup={"key_file": key_file, "erasure_ledger": secrets / "erasure-ledger.jsonl"} | (backup or {}),
        **overrides,
    )

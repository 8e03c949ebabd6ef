"""The dev-mode admin key of the default tenant: ``ENCLAVE_DEV_API_KEY``, or one generated at first start.

The generated key is written once under the data directory with owner-only permissions (0600)
and printed by ``enclave serve``/``enclave up`` the time it is created; afterwards they only say
where it is. Production mode has no dev key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ingest.config import Settings
from service.auth.api_keys import new_key


@dataclass(frozen=True)
class DevKey:
    value: str
    path: Path | None  # None: from ENCLAVE_DEV_API_KEY
    created: bool


def dev_key(settings: Settings, *, create: bool = True) -> DevKey | None:
    """The dev key in force, generating and storing one in dev mode when none exists yet."""
    if settings.mode != "dev":
        return None
    if settings.dev_api_key is not None:
        return DevKey(settings.dev_api_key.get_secret_value(), None, False)
    path = settings.dev_key_file
    if path.is_file():
        return DevKey(path.read_text(encoding="utf-8").strip(), path, False)
    if not create:
        return None
    return _create(path)


def _create(path: Path) -> DevKey:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = new_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this site created it first: use theirs
        return DevKey(path.read_text(encoding="utf-8").strip(), path, False)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return DevKey(key, path, True)


def announcement(key: DevKey) -> str:
    """What ``enclave serve`` tells the operator (the key itself only the time it was generated)."""
    if key.path is None:
        return "Dev mode: the admin API key of tenant 'default' is ENCLAVE_DEV_API_KEY."
    if key.created:
        return (
            f"Dev mode: admin API key of tenant 'default' (shown once; saved 0600 in {key.path}):\n  {key.value}\n"
            "Send it as: Authorization: Bearer <key>"
        )
    return f"Dev mode: the admin API key of tenant 'default' is in {key.path}."

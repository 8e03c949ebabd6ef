"""Where a production site keeps its master key and audit anchors: outside the data directory.

A copy of the data directory (a backup, a detached volume, a database administrator's shell) must
neither carry the key that opens every document and unwraps the audit key, nor be enough to rewrite
the audit trail unnoticed. Dev mode keeps everything under ``.enclave/`` for a one-command start.
"""

from __future__ import annotations

from ingest.config import Settings, inside
from ingest.errors import ConfigurationError


def check_placement(settings: Settings, *, serving: bool = False) -> None:
    """Refuse a production site whose master key lies in the data directory, or that serves without anchors.

    :raises ConfigurationError: the message says which variable to set and to what kind of place.
    """
    if settings.mode != "production":
        return
    if settings.compliance.key_backend == "local" and inside(settings.master_key_file, settings.data_dir):
        raise ConfigurationError(
            f"ENCLAVE_MODE=production refuses the master key inside ENCLAVE_DATA_DIR ({settings.master_key_file}): "
            "whoever copies the data directory could then read every document and re-sign the audit chain. Move "
            "the existing file (do not create a new one: every data key is wrapped by it) to a separate mount, "
            "e.g. a secret volume, and set ENCLAVE_COMPLIANCE__MASTER_KEY_FILE to it"
        )
    if serving and settings.audit.anchor_file is None:
        raise ConfigurationError(
            "ENCLAVE_MODE=production needs ENCLAVE_AUDIT__ANCHOR_FILE: an append-only file outside the data "
            "directory where the service anchors the audit chain's head (without it, deleting the newest audit "
            "records goes unnoticed)"
        )

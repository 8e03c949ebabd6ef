"""Locating and reading the policy data files in ``policies/`` (redaction, retention).

Policies are data, not code: operators edit the JSON, Enclave validates it at start-up and refuses
to start on a policy it cannot read (fail closed), naming the file and the problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.config import Settings
from ingest.errors import EnclaveError

REPO_POLICIES = Path(__file__).resolve().parent.parent / "policies"


class PolicyError(EnclaveError):
    """A policy file is missing or invalid; Enclave will not run on a policy it cannot read."""

    code = "policy_error"
    status = 503


def policies_dir(settings: Settings) -> Path:
    return settings.compliance.policies_dir or REPO_POLICIES


def load_policy_file(settings: Settings, name: str) -> dict[str, Any]:
    """:raises PolicyError: the file is missing or not a JSON object."""
    path = policies_dir(settings) / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PolicyError(f"policy file {path} is missing; restore it or set ENCLAVE_COMPLIANCE__POLICIES_DIR") from exc
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy file {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {path} must hold a JSON object")
    return data

"""The checks the project configures run with the test suite: ruff (lint and format) and strict mypy.

They are part of the README's test command, so a change that breaks them fails like a broken test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / command[0]
    assert tool.exists(), f"{tool} is missing: install the test tools with `bash scripts/install.sh --test`"
    return subprocess.run([str(tool), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "command",
    [("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_the_configured_check_passes(command: tuple[str, ...]) -> None:
    result = _run(*command)
    assert result.returncode == 0, f"`{' '.join(command)}` failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"

"""``enclave --help`` and the help of every command and command group, held against a stored snapshot.

What an operator reads in the help is part of the command line's contract: moving the CLI's code around
must not change it. After a deliberate change to a command's options or help text, rewrite the snapshot
with ``ENCLAVE_UPDATE_SNAPSHOTS=1 pytest tests/test_cli_help_snapshot.py`` and review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main
from typer.testing import CliRunner

from service.cli import app

SNAPSHOT = Path(__file__).parent / "snapshots" / "cli_help.txt"
# a fixed width and no colour, so the rendering is the same in every terminal and CI
ENV = {"COLUMNS": "100", "TERMINAL_WIDTH": "100", "NO_COLOR": "1", "TERM": "dumb", "ENCLAVE_URL": "", "FORCE_COLOR": ""}


def _command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    subcommands = getattr(command, "commands", None)  # a group (typer's own click types, not click's)
    if subcommands:
        for name in sorted(subcommands):
            yield from _command_paths(subcommands[name], (*path, name))


def _render_all() -> str:
    root = typer.main.get_command(app)
    runner = CliRunner()
    sections = []
    for path in _command_paths(root):
        result = runner.invoke(app, [*path, "--help"], prog_name="enclave", env=ENV)
        assert result.exit_code == 0, f"enclave {' '.join(path)} --help failed: {result.output}"
        title = " ".join(("enclave", *path, "--help"))
        sections.append(f"===== {title}\n{result.output.rstrip()}\n")
    return "\n".join(sections)


def test_the_help_of_every_command_is_unchanged() -> None:
    rendered = _render_all()
    if os.environ.get("ENCLAVE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(rendered)
    assert SNAPSHOT.exists(), f"no snapshot at {SNAPSHOT}: run with ENCLAVE_UPDATE_SNAPSHOTS=1 once"
    assert rendered == SNAPSHOT.read_text(), "the CLI help changed (ENCLAVE_UPDATE_SNAPSHOTS=1 rewrites the snapshot)"


def test_the_snapshot_covers_the_top_level_and_every_group() -> None:
    # guards the walk above: a snapshot of nothing would never fail
    titles = {line for line in SNAPSHOT.read_text().splitlines() if line.startswith("===== ")}
    expected = {"enclave --help", "enclave audit --help", "enclave keys create --help", "enclave backup --help"}
    assert {f"===== {t}" for t in expected} <= titles
    assert len(titles) > 30

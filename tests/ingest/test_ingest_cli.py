"""`enclave ingest DIR --recursive`: a summary row per file with the reason, and the exit code.

What a user would notice if it broke: a folder import that silently drops files, reports a
duplicate or a damaged file without saying why, or exits 0 when something failed (so a nightly
import job never alerts anyone).
"""

from __future__ import annotations

import shutil
from email.message import EmailMessage
from pathlib import Path

import pytest
from rich.progress import Progress
from typer.testing import CliRunner

from ingest.runtime import Components, build_components
from service.cli.ingesting import ingest_files
from tests.conftest import DOCS, make_settings
from tests.ingest.conftest import contract


def _folder(root: Path) -> Path:
    (root / "deep" / "deeper").mkdir(parents=True)
    shutil.copy(contract(0), root / "a-contract.txt")
    shutil.copy(contract(0), root / "deep" / "same-contract-again.txt")
    shutil.copy(DOCS / "bad" / "invalid.pdf", root / "deep" / "deeper" / "broken.pdf")
    shutil.copy(DOCS / "bad" / "crazyones-encrypted-256.pdf", root / "deep" / "locked.pdf")
    (root / "deep" / "Thumbs.db").write_bytes(b"\x00\x01 thumbnail cache")
    (root / "empty.txt").write_bytes(b"")
    message = EmailMessage()
    message["From"], message["Subject"] = "a@example.com", "Terms"
    message.set_content("Terms attached.")
    message.add_attachment(b"col,val\nfee,10\nterm,12\n", maintype="text", subtype="csv", filename="fees.csv")
    (root / "mail.eml").write_bytes(message.as_bytes())
    return root


def test_every_file_gets_a_row_with_its_outcome_and_reason(site: Components, tmp_path: Path) -> None:
    root = _folder(tmp_path / "in")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    rows = {
        r.path.relative_to(root).as_posix(): r
        for r in ingest_files(site, files, "c", "internal", Progress(disable=True))
    }
    outcome = {name: row.outcome for name, row in rows.items()}
    assert outcome == {
        "a-contract.txt": "ok",
        "deep/same-contract-again.txt": "skipped",
        "deep/deeper/broken.pdf": "failed",
        "deep/locked.pdf": "failed",
        "deep/Thumbs.db": "skipped",
        "empty.txt": "failed",
        "mail.eml": "ok",
        "mail.eml › fees.csv": "ok",
    }
    assert rows["a-contract.txt"].chunks > 0 and rows["mail.eml › fees.csv"].chunks > 0
    assert "same content as document" in (rows["deep/same-contract-again.txt"].reason or "")
    assert "damaged" in (rows["deep/deeper/broken.pdf"].reason or "")
    assert "password-protected" in (rows["deep/locked.pdf"].reason or "")
    assert "empty" in (rows["empty.txt"].reason or "")
    assert "lock file" in (rows["deep/Thumbs.db"].reason or "")


def test_cli_prints_the_table_and_exits_non_zero_on_failure(
    tmp_path: Path,
    embedder,
    parser,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    import service.cli.documents
    from service.cli import app

    sites = iter(range(2))
    monkeypatch.setattr(  # a fresh site per run: the command closes its components when it is done
        service.cli.documents,
        "build_components",
        lambda settings, **options: build_components(
            make_settings(tmp_path / f"site-{next(sites)}"), embedder=embedder, parser=parser, **options
        ),
    )
    result = CliRunner().invoke(app, ["ingest", str(_folder(tmp_path / "in")), "--recursive"], env={"COLUMNS": "400"})
    assert result.exit_code == 1, result.output
    assert "3 ok, 2 skipped, 3 failed" in result.output
    assert "password-protected" in result.output and "same content as document" in result.output

    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(contract(1), clean / "fine.txt")
    again = CliRunner().invoke(app, ["ingest", str(clean)], env={"COLUMNS": "400"})
    assert again.exit_code == 0 and "1 ok, 0 skipped, 0 failed" in again.output

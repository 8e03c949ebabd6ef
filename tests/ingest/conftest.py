"""Fixtures of the ingest suites: one SQLite site per test (the store matrix lives in test_store/test_documents)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import documents as docs
from ingest.runtime import Components, build_components
from tests.conftest import CUAD, make_settings

TENANT = "default"


@pytest.fixture
def site(tmp_path: Path, embedder, parser) -> Iterator[Components]:  # type: ignore[no-untyped-def]
    """Real components on SQLite in a fresh data directory."""
    built = build_components(make_settings(tmp_path / "data"), embedder=embedder, parser=parser)
    yield built
    built.close()


def contract(i: int) -> Path:
    """The i-th short CUAD contract (5-15 kB: a dozen chunks or so, quick to embed)."""
    return [p for p in sorted((CUAD / "contracts").glob("*.txt")) if 5_000 < p.stat().st_size < 15_000][i]


def upload(
    path: Path | None = None, *, data: bytes | None = None, name: str | None = None, **kw: object
) -> docs.Upload:
    """An upload into collection "c" of the default tenant, from a file or from bytes."""
    raw = data if data is not None else path.read_bytes()  # type: ignore[union-attr]
    tenant = str(kw.pop("tenant", TENANT))
    return docs.Upload(filename=name or path.name, data=raw, tenant=tenant, collection="c", **kw)  # type: ignore[arg-type, union-attr]

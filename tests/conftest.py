"""Shared fixtures: real components, warmed once per test session.

The embedder, the parser and the llama.cpp generator are process-wide and stateless with respect
to a site, so they are shared; every test that writes gets its own data directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from ingest.config import Settings  # noqa: E402
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder  # noqa: E402
from ingest.runtime import Components, build_components  # noqa: E402
from tests.postgres import STORES, PostgresCluster  # noqa: E402

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from ingest.embedding.port import Embedder
    from ingest.parsing.port import Parser
    from service.generation.port import Generator
    from service.state import AppState

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ENCLAVE_SHARED_DATA", REPO.parent / "shared" / "data"))
DOCS = DATA / "docs"
CUAD = DATA / "cuad"


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder()
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def parser():  # type: ignore[no-untyped-def]
    from ingest.parsing.unstructured_parser import UnstructuredParser

    instance = UnstructuredParser()
    instance.warm_up()
    return instance


# The dev admin key of tenant "default" in every test site (ENCLAVE_DEV_API_KEY): auth is on in tests too.
DEV_KEY = "enc_test-dev-admin-key-0123456789abcdefghijklmnopqrstuv"
DEV_HEADERS = {"Authorization": f"Bearer {DEV_KEY}"}


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    if overrides.get("mode", "dev") == "dev":
        overrides.setdefault("dev_api_key", DEV_KEY)
    return Settings(data_dir=data_dir, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One real PostgreSQL 16 (``pgserver``, Unix socket only) for the session; a fresh database per test."""
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The relational store a test runs on: the embedded SQLite default, then a migrated PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'data' / 'enclave.db').resolve()}"
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    name = cluster.create_database(migrated=True)
    yield cluster.url(name)
    cluster.drop_database(name)


@pytest.fixture
def components(tmp_path: Path, store_url: str, embedder: SentenceTransformerEmbedder, parser) -> Iterator[Components]:  # type: ignore[no-untyped-def]
    database = {} if store_url.startswith("sqlite") else {"database_url": store_url}
    built = build_components(make_settings(tmp_path / "data", **database), embedder=embedder, parser=parser)
    yield built
    built.close()


@pytest.fixture(scope="session")
def generator(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real llama.cpp server with the packaged SmolLM2 for the whole session."""
    from service.generation.llama_cpp_generator import SupervisedLlamaGenerator

    gen = SupervisedLlamaGenerator(state_dir=tmp_path_factory.mktemp("generator"))
    gen.warm_up()
    yield gen
    gen.close()


@contextmanager
def served_app(
    settings: Settings, embedder: Embedder, parser: Parser, generator: Generator, headers: dict[str, str] | None = None
) -> Iterator[tuple[TestClient, AppState]]:
    """The real app around real components and the session's generator, as a ``TestClient``.

    Teardown stops the app's background tasks and closes its components, but not the generator
    (``state.close()`` would: the generator belongs to the test session).
    """
    from fastapi.testclient import TestClient  # imported late: the app pulls in regopy (see service.policy)

    from service.app import create_app
    from service.state import build_state

    components = build_components(settings, embedder=embedder, parser=parser)
    state = build_state(settings, components=components, generator=generator)
    try:
        with TestClient(create_app(settings, state), headers=DEV_HEADERS if headers is None else headers) as client:
            yield client, state
    finally:
        for task in (state.worker, state.retention):
            if task is not None:
                task.stop()
        components.close()

"""Proof of erasure: after deleting documents that carry a unique canary, not one byte of it is left
in clear anywhere under the data directory (index segments, SQLite and its WAL, originals, logs)
or in the generator's state; and even before the deletion the canary never reached the audit
trail, the application logs or the stored index payloads and originals (they are encrypted).

Real components throughout: Qdrant Edge, SQLite, the packaged embedder, the llama.cpp server.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest.audit.trail import export_line
from ingest.erasure import checkpoint_wal
from ingest.runtime import Components, build_components
from service.app import create_app
from service.state import build_state
from tests import conftest
from tests.conftest import make_settings

CANARY = f"qx{uuid.uuid4().hex[:16]}zz"
HEADERS: dict[str, str] = getattr(conftest, "DEV_HEADERS", {})
MEMO = (
    f"Internal memo {CANARY}.\n\nThe vendor {CANARY} agreed to deliver the turbine parts by March 3.\n\n"
    "Payment terms are net thirty days from the invoice date.\n"
)
MINUTES = f"# Board minutes\n\nThe board approved project {CANARY} and its budget of two million dollars.\n"


def hits(root: Path, needle: bytes) -> list[str]:
    """Every file under ``root`` whose bytes contain ``needle`` (UTF-8 and UTF-16, as stored by anything)."""
    forms = (needle, needle.decode().encode("utf-16-le"))
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and any(f in p.read_bytes() for f in forms)
    )


@pytest.fixture
def site(tmp_path: Path, embedder, parser, generator) -> Iterator[tuple[TestClient, Components, Path]]:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    settings = make_settings(data)
    components = build_components(settings, embedder=embedder, parser=parser)
    state = build_state(settings, components=components, generator=generator)
    handler = logging.FileHandler(settings.log_dir / "enclave.log")  # the application log, at DEBUG, under the data dir
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with TestClient(create_app(settings, state), headers=HEADERS) as client:
            yield client, components, data
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
        for task in (state.worker, state.retention):
            if task is not None:
                task.stop()
        components.close()


def _ingest(client: TestClient, name: str, text: str) -> str:
    response = client.post("/v1/documents", files={"file": (name, text.encode())}, data={"title": f"Memo {CANARY}"})
    assert response.status_code == 202, response.text
    document_id: str = response.json()["document_id"]
    for _ in range(600):
        status = client.get(f"/v1/documents/{document_id}").json()["status"]
        if status in ("ready", "failed"):
            break
        __import__("time").sleep(0.2)
    assert status == "ready"
    return document_id


def test_erased_documents_leave_no_canary_anywhere(site: tuple[TestClient, Components, Path], generator) -> None:  # type: ignore[no-untyped-def]
    client, components, data = site
    needle = CANARY.encode()
    ids = [_ingest(client, f"memo-{CANARY}.txt", MEMO), _ingest(client, "minutes.md", MINUTES)]
    answer = client.post("/v1/query", json={"query": f"When will vendor {CANARY} deliver the turbine parts?"})
    search = client.post("/v1/search", json={"query": f"project {CANARY} budget", "k": 5})
    assert answer.status_code == 200 and CANARY in search.text  # the canary was really indexed, found and shown
    components.index.flush()

    # Before deletion: never in the audit trail or the logs; never in clear in the index or the originals.
    trail = "\n".join(export_line(r) for r in components.compliance.audit.records())
    assert "query.answered" in trail and CANARY not in trail
    assert hits(data / "logs", needle) == [] and (data / "logs" / "enclave.log").stat().st_size > 0
    assert [h for h in hits(data, needle) if not h.startswith("enclave.db")] == []
    assert hits(data, needle), "the scanner must see the canary where it legitimately is (the document rows)"

    for document_id in ids:
        receipt = client.delete(f"/v1/documents/{document_id}")
        assert receipt.status_code == 200 and receipt.json()["verification"]["index_points_remaining"] == 0
    components.index.optimize()  # type: ignore[attr-defined]
    components.index.flush()
    checkpoint_wal(components.engine, vacuum=True)

    assert hits(data, needle) == []
    state_dir = getattr(generator, "_state_dir", None)
    assert state_dir is None or hits(Path(state_dir), needle) == []
    assert client.post("/v1/search", json={"query": f"project {CANARY} budget", "k": 5}).json()["results"] == []

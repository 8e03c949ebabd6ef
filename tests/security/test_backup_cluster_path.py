"""The Qdrant cluster path of backup and restore (README "Backup and restore"): the site is copied by
hand in a maintenance window (database dump, collection snapshot, originals volume), a document is
erased afterwards, the copies are put back, and ``reapply_ledger`` makes the erasure hold again.

The collection lives in qdrant-client's local mode (no Qdrant server binary exists here), driven
through the same adapter and the same sealing as a cluster; the store is SQLite, the embedder real.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from qdrant_client import QdrantClient
from sqlmodel import Session

from ingest import documents as docs
from ingest.audit.trail import Actor
from ingest.backup.restore import reapply_ledger
from ingest.config import Settings
from ingest.erasure import erase_document
from ingest.index.port import AccessFilter
from ingest.index.qdrant_client_index import ClusterConfig, QdrantClientIndex
from ingest.index.swap import AtomicSwapIndex
from ingest.keys.sealed import SealedIndex
from ingest.runtime import Components, build_components
from ingest.store.models import Document
from ingest.worker import drain
from tests.security.backup_site import backup_settings
from tests.security.test_erasure_canary import hits

CANARY = f"qc{uuid.uuid4().hex[:16]}zz"
KEEP = "The turbine maintenance contract renews every April with a ninety day notice period.\n"
ERASE = f"Patient {CANARY} was admitted on March 3 with a fractured wrist and discharged the same day.\n"


def _settings(root: Path, name: str) -> Settings:
    return backup_settings(root, name)


def _site(settings: Settings, collection: Path, embedder, parser) -> Components:  # type: ignore[no-untyped-def]
    """Components whose index is the qdrant-client adapter (sealed, swapped) on a local collection."""
    components = build_components(settings, embedder=embedder, parser=parser)
    components.index.close()  # the embedded index this build opened: replaced by the cluster adapter
    adapter = QdrantClientIndex(embedder.dim, ClusterConfig(), client=QdrantClient(path=str(collection)))
    components.index = AtomicSwapIndex(SealedIndex(adapter, components.compliance.keyring))
    components.index.warm_up()
    return components


def _found(components: Components, text: str) -> set[str]:
    dense, sparse = components.embedder.embed_query(text), components.sparse.embed_query(text)
    return {
        c.record.document_id for c in components.index.search(dense, sparse, AccessFilter(tenant="default"), 5).chunks
    }


def test_erasure_after_a_hand_taken_backup_holds_after_reapplying_the_ledger(  # type: ignore[no-untyped-def]
    tmp_path: Path, embedder, parser
) -> None:
    source = _settings(tmp_path, "data")
    site = _site(source, tmp_path / "qdrant", embedder, parser)
    ids = {}
    for name, text in (("keep.txt", KEEP), ("erase.txt", ERASE)):
        upload = docs.Upload(filename=name, data=text.encode(), tenant="default", collection="default")
        ids[name[:4]] = docs.submit(site, upload).document.id
    drain(site)
    site.close()  # the maintenance window: writers stopped, then each part copied
    copies = tmp_path / "backup"
    copies.mkdir()
    shutil.copy2(source.data_dir / "enclave.db", copies / "enclave.db")
    shutil.copytree(tmp_path / "qdrant", copies / "qdrant")
    shutil.copytree(source.blob_dir, copies / "blobs")

    site = _site(source, tmp_path / "qdrant", embedder, parser)
    try:
        erase_document(site, Actor.system("default", "dpo"), ids["eras"])  # after the backup: in the ledger
    finally:
        site.close()

    target = _settings(tmp_path, "restored")  # put back by hand: dump, snapshot, volume
    target.data_dir.mkdir()
    shutil.copy2(copies / "enclave.db", target.data_dir / "enclave.db")
    shutil.copytree(copies / "qdrant", tmp_path / "qdrant-restored")
    shutil.copytree(copies / "blobs", target.blob_dir)
    restored = _site(target, tmp_path / "qdrant-restored", embedder, parser)
    try:
        question = f"patient {CANARY} admitted fractured wrist"
        assert ids["eras"] in _found(restored, question)  # the copies bring the erased document back

        report = reapply_ledger(target, restored.index)
        assert report.documents_erased == [ids["eras"]] and report.erasures_reapplied == 1

        assert ids["eras"] not in _found(restored, question) and ids["keep"] in _found(restored, "turbine contract")
        assert restored.index.count(AccessFilter(tenant="default", document_ids=(ids["eras"],))) == 0
        with Session(restored.engine) as session:
            assert session.get(Document, ids["eras"]) is None and session.get(Document, ids["keep"]) is not None
        assert not [p for p in (target.blob_dir / "originals").iterdir() if p.name.startswith(ids["eras"])]
        assert hits(target.data_dir, CANARY.encode()) == []
        actions = [r.action for r in restored.compliance.audit.records()]
        assert actions[-1] == "backup.ledger_reapplied"
    finally:
        restored.close()


def test_the_reapply_ledger_command(tmp_path: Path, embedder, parser, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    import service.cli.backup
    from service.cli import app

    settings = _settings(tmp_path, "data")
    site = build_components(settings, embedder=embedder, parser=parser)
    upload = docs.Upload(filename="erase.txt", data=ERASE.encode(), tenant="default", collection="default")
    erased = docs.submit(site, upload).document.id
    drain(site)
    erase_document(site, Actor.system("default", "dpo"), erased)
    site.close()
    monkeypatch.setattr(service.cli.backup, "get_settings", lambda: settings)
    ran = CliRunner().invoke(app, ["backup", "reapply-ledger"], env={"COLUMNS": "400"})
    assert ran.exit_code == 0 and "re-applied 0 erasure(s)" in ran.output, ran.output  # already gone here
    extra = CliRunner().invoke(app, ["backup", "reapply-ledger", "x"], env={"COLUMNS": "400"})
    assert extra.exit_code == 2 and "takes no path" in extra.output

"""Envelope encryption: the master key file, wrapped data keys, rotation and crypto-shredding."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlmodel import Session, select

from ingest.blobs import LocalBlobStore
from ingest.compliance import Compliance, build_compliance
from ingest.keys.crypto import BLOB_MAGIC, DecryptionFailed, open_text, seal_text
from ingest.keys.keyring import KeyDestroyed
from ingest.keys.local_keyfile import KeyUnavailable, LocalKeyFile
from ingest.keys.sealed import SealedBlobStore
from ingest.store.compliance_models import DataKey
from ingest.store.db import create_schema, make_engine, session_scope
from tests.conftest import make_settings


@pytest.fixture
def compliance(tmp_path: Path) -> Compliance:
    settings = make_settings(tmp_path / "data")
    settings.ensure_dirs()
    engine = make_engine(settings.resolved_database_url)
    create_schema(engine)
    return build_compliance(settings, engine)


def test_master_key_file_is_created_private_at_first_start(compliance: Compliance, tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "master.key"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text())["current"] == "v1"
    with session_scope(compliance.audit._engine) as session:  # noqa: SLF001 - the audit key row exists, wrapped
        row = session.get(DataKey, "audit:hmac")
    assert row is not None and row.wrapped.startswith("v1:") and row.kek_version == "v1"


def test_a_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    kek = LocalKeyFile(tmp_path / "master.key")
    kek.warm_up()
    (tmp_path / "master.key").chmod(0o644)
    with pytest.raises(KeyUnavailable, match="chmod 600"):
        LocalKeyFile(tmp_path / "master.key").warm_up()


def test_originals_are_sealed_per_document_and_die_with_their_key(compliance: Compliance, tmp_path: Path) -> None:
    ring = compliance.keyring
    ring.create_document_key("t1", "doc1")
    ring.create_document_key("t1", "doc2")
    blobs = SealedBlobStore(LocalBlobStore(tmp_path / "blobs"), ring)
    blobs.put("doc1", b"secret original bytes")
    stored = (tmp_path / "blobs" / "doc1").read_bytes()
    assert stored.startswith(BLOB_MAGIC) and b"secret" not in stored
    assert blobs.get("doc1") == b"secret original bytes"
    (tmp_path / "blobs" / "doc2").write_bytes(stored)  # a ciphertext moved to another document does not open
    with pytest.raises(DecryptionFailed):
        blobs.get("doc2")
    with session_scope(compliance.audit._engine) as session:  # noqa: SLF001
        assert ring.destroy_document_keys(session, ["doc1"]) == 1
    with pytest.raises(KeyDestroyed):
        blobs.get("doc1")


def test_rotation_rewraps_keys_without_touching_data(compliance: Compliance, tmp_path: Path) -> None:
    ring = compliance.keyring
    key = ring.create_document_key("t1", "doc1")
    sealed = seal_text(key, "clause text", b"ctx")
    report = ring.rotate_master()
    assert (report.previous_version, report.new_version, report.retired) == ("v1", "v2", ["v1"])
    assert report.rewrapped == 2  # the tenant key and the audit key; document keys stay as they are
    keyfile = json.loads((tmp_path / "data" / "keys" / "master.key").read_text())
    assert set(keyfile["keys"]) == {"v2"}  # the old master key is gone from disk
    settings = make_settings(tmp_path / "data")
    fresh = build_compliance(settings, make_engine(settings.resolved_database_url))  # a new process: nothing cached
    assert open_text(fresh.keyring.document_key("doc1"), sealed, b"ctx") == "clause text"
    with Session(compliance.audit._engine) as session:  # noqa: SLF001
        versions = {
            r.id: r.wrapped.split(":")[0] for r in session.exec(select(DataKey).where(DataKey.parent == "master"))
        }
    assert versions == {"audit:hmac": "v2", "tenant:t1": "v2"}


def test_a_lost_master_key_fails_closed(compliance: Compliance, tmp_path: Path) -> None:
    compliance.keyring.create_document_key("t1", "doc1")
    (tmp_path / "data" / "keys" / "master.key").unlink()
    settings = make_settings(tmp_path / "data")
    with pytest.raises(
        KeyUnavailable, match="does not unwrap"
    ):  # no key, no start: nothing is readable, nothing guessed
        build_compliance(settings, make_engine(settings.resolved_database_url))


def test_a_full_key_cache_keeps_a_key_whose_row_is_not_committed_yet(
    compliance: Compliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ingest.keys.keyring.CACHE_LIMIT", 8)
    ring = compliance.keyring
    for n in range(5):  # tenant key + 5 document keys: the cache is nearly full
        ring.create_document_key("t1", f"earlier-{n}")
    with session_scope(compliance.audit._engine) as session:  # noqa: SLF001
        key = ring.create_document_key("t1", "pending", session)
        for n in range(3):  # other uploads fill the cache while this transaction is open
            ring.create_document_key("t1", f"other-{n}")
        assert ring.document_key("pending") == key, "the uncommitted key must still be readable"
    assert ring.document_key("pending") == key

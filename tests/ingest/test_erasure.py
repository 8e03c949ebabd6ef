"""Erasure of a whole tenant and retention (periods, legal holds, the schedule) on the real stack."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from ingest import documents as docs
from ingest.audit.trail import Actor, AuditEvent
from ingest.erasure import erase_tenant
from ingest.index.port import AccessFilter
from ingest.policy_data import REPO_POLICIES
from ingest.retention import RetentionPolicy, RetentionScheduler, run_retention
from ingest.runtime import Components
from ingest.store.compliance_models import AuditRecord, DataKey
from ingest.store.models import Document
from ingest.worker import drain


def _add(components: Components, tenant: str, name: str, text: str, collection: str = "c", **metadata: str) -> str:
    upload = docs.Upload(
        filename=name, data=text.encode(), tenant=tenant, collection=collection, metadata=dict(metadata)
    )
    return docs.submit(components, upload).document.id


def test_erasing_a_tenant_removes_its_data_and_keys_and_nothing_else(components: Components) -> None:
    ours = [
        _add(components, "acme", f"a{i}.txt", f"Acme supply agreement number {i} with delivery terms.")
        for i in range(2)
    ]
    theirs = _add(components, "globex", "g.txt", "Globex supply agreement with delivery terms.")
    drain(components)
    components.compliance.audit.record(
        AuditEvent(Actor("acme", "ann"), "query.answered", query="delivery terms for acme?")
    )
    receipt = erase_tenant(components, Actor("acme", "ann", ("admin",)))
    assert receipt.scope == "tenant" and {d.document_id for d in receipt.documents} == set(ours)
    assert receipt.keys_destroyed == 3  # two document keys and the tenant key
    assert components.index.count(AccessFilter(tenant="acme")) == 0
    assert components.index.count(AccessFilter(tenant="globex", document_ids=(theirs,))) >= 1
    with Session(components.engine) as session:
        assert session.exec(select(Document.id).where(Document.tenant == "acme")).all() == []
        assert session.exec(select(DataKey.id).where(col(DataKey.tenant) == "acme")).all() == []
        audited = session.exec(select(AuditRecord).where(AuditRecord.tenant == "acme")).all()
    asked = [r for r in audited if r.action == "query.answered"][0]
    assert (
        asked.query_ciphertext and components.compliance.audit.reveal_query(asked) is None
    )  # shredded with the tenant
    assert components.compliance.audit.verify().ok  # the trail itself stays whole


def _policy(holds: list[dict[str, object]]) -> RetentionPolicy:
    return RetentionPolicy.from_data(
        {
            "default_days": None,
            "classifications": {"internal": 3650},
            "collections": {"scratch": 30},
            "legal_holds": holds,
        }
    )


def test_retention_erases_what_expired_unless_a_legal_hold_covers_it(components: Components) -> None:
    expired = _add(components, "t1", "old.txt", "Scratch notes about the vendor call.", collection="scratch")
    held = _add(
        components, "t1", "held.txt", "Scratch notes under litigation hold.", collection="scratch", matter="A-1"
    )
    kept = _add(components, "t1", "kept.txt", "A contract kept for ten years.", collection="contracts")
    drain(components)
    policy = _policy([{"id": "hold-A-1", "reason": "litigation", "metadata": {"matter": "A-1"}}])
    assert run_retention(components, datetime.now(UTC) + timedelta(days=29), policy).receipts == []  # not yet
    report = run_retention(components, datetime.now(UTC) + timedelta(days=31), policy)
    assert [r.target for r in report.receipts] == [expired] and report.held == {held: "hold-A-1"}
    with Session(components.engine) as session:
        remaining = set(session.exec(select(Document.id)).all())
        record = session.exec(select(AuditRecord).where(AuditRecord.action == "retention.deleted")).one()
    assert remaining == {held, kept}
    assert record.subject == "retention" and json.loads(record.document_ids_json) == [expired]
    assert json.loads(record.detail_json)["receipt_sha256"] == report.receipts[0].receipt_sha256


def test_the_schedule_applies_the_policy_file(components: Components, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO_POLICIES, policies)
    (policies / "retention.json").write_text(json.dumps({"collections": {"tmp": 0}, "legal_holds": []}))
    components.settings.compliance.policies_dir = policies
    gone = _add(components, "t1", "tmp.txt", "Temporary upload.", collection="tmp")
    drain(components)
    scheduler = RetentionScheduler(components, interval_s=0.2)
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while scheduler.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        scheduler.stop()
    with Session(components.engine) as session:
        assert session.get(Document, gone) is None


def test_erasing_a_document_takes_its_pending_version_and_its_attachments(components: Components) -> None:
    from ingest.erasure import erase_document
    from ingest.versions import submit_version

    parent = _add(components, "t1", "mail.txt", "An e-mail with one attachment.")
    drain(components)
    child = docs.submit(
        components,
        docs.Upload(filename="att.txt", data=b"The attachment.", tenant="t1", collection="c", parent_id=parent),
    ).document.id
    submit_version(
        components, parent, docs.Upload(filename="mail.txt", data=b"The e-mail, edited.", tenant="t1", collection="c")
    )
    originals = components.settings.blob_dir / "originals"
    assert {p.name for p in originals.iterdir()} >= {parent, f"{parent}.v2", child}
    receipt = erase_document(components, Actor("t1", "ann"), parent)
    erased = {d.document_id: d for d in receipt.documents}
    assert set(erased) == {parent, child} and erased[parent].originals == [parent, f"{parent}.v2"]
    assert receipt.verification is not None and receipt.verification.originals_remaining == 0
    assert not [p for p in originals.iterdir() if not p.name.startswith(".")]


def test_a_retention_sweep_vacuums_the_index_once_and_leaves_no_erased_term_id(components: Components) -> None:
    import struct

    from ingest.embedding.bm25_encoder import QdrantBm25Encoder
    from ingest.keys.terms import keyed_id, term_key

    words = ["zqfirstcanary", "zqsecondcanary", "zqthirdcanary"]
    for i, word in enumerate(words):
        _add(components, "t1", f"s{i}.txt", f"Scratch notes about {word} from the vendor call.", collection="scratch")
    _add(components, "t1", "kept.txt", "A contract kept for ten years.", collection="contracts")
    drain(components)
    key = term_key(components.compliance.keyring.tenant_key("t1"))
    ids = [keyed_id(key, QdrantBm25Encoder().embed_query(w).indices[0]) for w in words]
    index_dir = components.settings.index_dir

    def stored(term: int) -> bool:
        forms = (struct.pack("<I", term), struct.pack(">I", term))
        return any(f in p.read_bytes() for p in index_dir.rglob("*") if p.is_file() for f in forms)

    assert all(stored(t) for t in ids)
    vacuums = 0
    optimize = components.index.optimize  # type: ignore[attr-defined]

    def counted() -> bool:
        nonlocal vacuums
        vacuums += 1
        return bool(optimize())

    components.index.optimize = counted  # type: ignore[attr-defined]
    report = run_retention(components, datetime.now(UTC) + timedelta(days=31), _policy([]))
    assert len(report.receipts) == 3 and vacuums == 1  # one rebuild for the sweep, not one per document
    assert not any(stored(t) for t in ids)

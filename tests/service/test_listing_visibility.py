"""``visible_documents`` (``GET /v1/documents``) for callers whose ACL Python decides: the same documents as the
row-by-row rule (:func:`service.auth.visibility.may_see`), newest first, and whole rows read for the page alone.

Real SQLite store; rows as ingestion leaves them (titles in clear, as rows from before sealing read).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlmodel import select

from ingest.store.db import create_schema, make_engine, session_scope
from ingest.store.models import Document, DocumentStatus, utcnow
from service.auth.principal import Principal
from service.auth.visibility import may_see, visible_documents

ACLS = [
    {"groups": [], "users": []},
    {"groups": ["legal"], "users": []},
    {"groups": ["hr"], "users": []},
    {"groups": [], "users": ["bob"]},
    {"groups": ["legal", "matter:B"], "users": []},
    {"groups": ["matter:A"], "users": ["bob"]},
]
CALLERS = [
    Principal("t", "ann", groups=("legal",), roles=("reader",)),
    Principal("t", "bob", groups=(), roles=("reader",)),
    Principal("t", "cy", groups=("legal", "matter:A"), roles=("reader",), excluded_groups=("matter:B",)),
    Principal("t", "dee", groups=("hr",), roles=("reader",), classifications=("internal",)),
]


@pytest.fixture
def components(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'enclave.db'}")
    create_schema(engine)
    now = utcnow()
    rows = [
        Document(
            tenant="t" if i % 7 else "other",
            collection="contracts" if i % 3 else "records",
            title=f"Document {i}",
            filename=f"d{i}.txt",
            content_hash=hashlib.sha256(str(i).encode()).hexdigest(),
            status=DocumentStatus.ready,
            classification="confidential" if i % 5 == 0 else "internal",
            acl_json=json.dumps(ACLS[i % len(ACLS)]),
            created_at=now - timedelta(seconds=i),
        ).model_dump()
        for i in range(120)
    ]
    with session_scope(engine) as session:
        session.execute(insert(Document.__table__), rows)  # type: ignore[attr-defined]
    yield SimpleNamespace(engine=engine, compliance=SimpleNamespace(keyring=None))
    engine.dispose()


@pytest.mark.parametrize("caller", CALLERS, ids=lambda p: p.subject)
@pytest.mark.parametrize("collection", [None, "records"])
def test_the_listing_holds_exactly_what_the_row_rule_admits_newest_first(
    components: Any, caller: Principal, collection: str | None
) -> None:
    with session_scope(components.engine) as session:
        every = session.exec(select(Document).order_by(Document.created_at.desc())).all()  # type: ignore[attr-defined]
    expected = [d.id for d in every if may_see(caller, d) and (collection is None or d.collection == collection)]
    assert 0 < len(expected) < len(every)
    pages, offset = [], 0
    while True:
        page, total = visible_documents(components, caller, collection, None, 7, offset)
        assert total == len(expected)
        pages += [d.id for d in page]
        offset += 7
        if offset >= total:
            break
    assert pages == expected


def test_whole_rows_are_read_for_the_page_alone(components: Any) -> None:
    loaded: list[str] = []

    def count(target: Document, _context: object) -> None:
        loaded.append(target.id)

    event.listen(Document, "load", count)
    try:
        page, total = visible_documents(components, CALLERS[0], None, None, 2, 3)
    finally:
        event.remove(Document, "load", count)
    assert len(page) == 2 and total > 10 and sorted(loaded) == sorted(d.id for d in page)

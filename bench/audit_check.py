"""After a load run: does the audit log hold exactly one record per request sent?

Matches records to requests by the ``X-Request-ID`` each benchmark request carries. Activates by
itself: on a build without an audit table it reports SKIPPED instead of failing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine, inspect, text

AUDIT_TABLE = "auditrecord"


def audit_check(database_url: str, sent: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Compare the audit table with the ledger of requests (``request_id``, ``kind``, ``status``)."""
    engine = create_engine(database_url)
    try:
        if AUDIT_TABLE not in inspect(engine).get_table_names():
            return {
                "available": False,
                "verdict": "SKIPPED: this build has no audit table yet; the check runs by itself once it exists",
            }
        with engine.connect() as conn:
            records = conn.execute(text(f"SELECT request_id, action, outcome FROM {AUDIT_TABLE}")).all()
    finally:
        engine.dispose()
    return compare([(r[0], r[1], r[2]) for r in records], sent)


def compare(records: Sequence[tuple[str | None, str, str]], sent: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The verdict from audit rows ``(request_id, action, outcome)`` and the ledger of requests sent."""
    per_request = Counter(rid for rid, _, _ in records if rid)
    ids = [row["request_id"] for row in sent]
    missing = [rid for rid in ids if per_request[rid] == 0]
    duplicated = {rid: per_request[rid] for rid in ids if per_request[rid] > 1}
    actions = Counter(f"{action}:{outcome}" for rid, action, outcome in records if rid in set(ids))
    out: dict[str, Any] = {
        "available": True,
        "requests": len(ids),
        "records": len(records),
        "records_matching_requests": sum(per_request[rid] for rid in set(ids)),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "missing_sample": missing[:10],
        "duplicated_sample": dict(list(duplicated.items())[:10]),
        "actions": dict(actions),
    }
    if not per_request and records:
        out["verdict"] = f"UNMATCHED: {len(records)} records carry no request id, {len(ids)} requests were sent"
    elif missing or duplicated:
        out["verdict"] = f"FAIL: {len(missing)} requests without a record, {len(duplicated)} with more than one"
    else:
        out["verdict"] = f"OK: {len(ids)} requests, exactly one audit record each"
    return out

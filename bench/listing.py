"""``GET /v1/documents`` as a portal polls it: one page of the caller's documents and their total.

An admin's listing is decided in SQL (count, then one page); a reader's needs its ACL, which is JSON,
so :func:`service.auth.visibility.visible_documents` decides it in Python over every document of the
tenant the SQL filter admits. This bench times both on one SQLite store of ``--documents`` rows
(a quarter restricted to a group, a tenth to a user, the rest open to the tenant), a page of 1 and of
100, the callers alternating, and reports the median per listing.

    .venv/bin/python -m bench.listing                      # 5,000 documents (~1 min)
    .venv/bin/python -m bench.listing --documents 50000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert

from bench.common import format_table, say, write_json
from ingest.store.db import create_schema, make_engine, session_scope
from ingest.store.models import Document, DocumentStatus, utcnow
from service.auth.principal import Principal
from service.auth.visibility import visible_documents


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--documents", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=50, help="listings per caller and page size")
    p.add_argument("--name", default="listing", help="results file name (bench/results/<name>.json)")
    return p.parse_args(argv)


def rows(n: int) -> list[dict[str, Any]]:
    """Ready document rows of one tenant, newest last; titles in clear (as rows from before sealing read)."""
    now = utcnow()
    out = []
    for i in range(n):
        acl = (
            {"groups": ["legal"], "users": []}
            if i % 4 == 0
            else {"groups": [], "users": ["bob"] if i % 10 == 1 else []}
        )
        out.append(
            Document(
                tenant="bench",
                collection="contracts",
                title=f"Agreement {i}",
                filename=f"agreement-{i}.txt",
                content_hash=hashlib.sha256(str(i).encode()).hexdigest(),
                status=DocumentStatus.ready,
                chunk_count=70,
                version=1,
                acl_json=json.dumps(acl),
                created_at=now - timedelta(seconds=n - i),
            ).model_dump()
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    callers = {
        "admin (SQL decides)": Principal("bench", "admin", roles=("admin",), auth_method="api_key"),
        "reader in 'legal' (ACL in Python)": Principal("bench", "ann", groups=("legal",), roles=("reader",)),
    }
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'enclave.db'}")
        create_schema(engine)
        with session_scope(engine) as session:
            session.execute(insert(Document.__table__), rows(args.documents))  # type: ignore[attr-defined]
        components: Any = SimpleNamespace(engine=engine, compliance=SimpleNamespace(keyring=None))
        calls: dict[str, Callable[[], tuple[list[Document], int]]] = {
            f"{who}, limit {limit}": (
                lambda principal=principal, limit=limit: visible_documents(components, principal, None, None, limit, 0)
            )
            for who, principal in callers.items()
            for limit in (1, 100)
        }
        totals = {name: call()[1] for name, call in calls.items()}  # warm, and what each caller sees
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.rounds):
            for name, call in calls.items():
                started = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - started) * 1000)
        engine.dispose()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    table = [[name, totals[name], f"{medians[name]:.2f}"] for name in calls]
    print(format_table(["listing", "documents visible", "median ms"], table))
    payload = {"documents": args.documents, "rounds": args.rounds, "visible": totals, "median_ms": medians}
    say(f"wrote {write_json(args.name, payload)}")


if __name__ == "__main__":
    main()

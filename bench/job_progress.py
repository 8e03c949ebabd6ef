"""What recording one embedding batch's progress costs the worker: a transaction per job against one for all.

The batching worker embeds texts from many documents in one batch (a run of abstracts puts dozens in
one), and after each batch records every one of those jobs' embedded chunks (and that the worker is
alive). This times both ways on the embedded SQLite store and on a real PostgreSQL 16 (``pgserver``,
Unix socket), alternating, for the jobs of one batch.

    .venv/bin/python -m bench.job_progress [--jobs 20] [--rounds 30]   # table + bench/results/job_progress.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlmodel import select

from bench.common import format_table, say, write_json
from ingest import documents as docs
from ingest.config import Settings
from ingest.jobs import embedded_progress, heartbeat
from ingest.runtime import build_components
from ingest.store.db import session_scope
from ingest.store.models import Job
from tests.postgres import PostgresCluster


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=20, help="documents served by one batch")
    p.add_argument("--rounds", type=int, default=30, help="alternations of the two ways")
    return p.parse_args(argv)


def measure(store: str, database_url: str | None, jobs: int, rounds: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="enclave-job-progress-")) / "data"
    settings = Settings(data_dir=data, dev_api_key=SecretStr("bench-" + "k" * 32), database_url=database_url)
    components = build_components(settings, warm_parser=False)
    try:
        for i in range(jobs):
            upload = docs.Upload(
                filename=f"note-{i}.txt",
                data=f"note {i}\n".encode(),
                tenant="default",
                collection="default",
                classification="internal",
                title=f"note {i}",
            )
            docs.submit(components, upload)
        with session_scope(components.engine) as session:
            ids = [job.id for job in session.exec(select(Job)).all()]
        each: list[float] = []
        once: list[float] = []
        for r in range(rounds):
            started = time.perf_counter()
            for job_id in ids:
                heartbeat(components.engine, job_id, chunks=r)
            each.append(time.perf_counter() - started)
            started = time.perf_counter()
            embedded_progress(components.engine, {job_id: r for job_id in ids})
            once.append(time.perf_counter() - started)
    finally:
        components.close()
    per_job, batched = 1000 * statistics.median(each), 1000 * statistics.median(once)
    return {"store": store, "jobs": len(ids), "per_job_ms": round(per_job, 2), "one_for_all_ms": round(batched, 2)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    cluster = PostgresCluster()
    try:
        name = cluster.create_database(migrated=True)
        rows = [
            measure("sqlite", None, args.jobs, args.rounds),
            measure("postgres", cluster.url(name), args.jobs, args.rounds),
        ]
    finally:
        cluster.stop()
    table = format_table(
        ["store", "jobs in the batch", "a transaction per job (ms)", "one for all (ms)"],
        [[r["store"], r["jobs"], r["per_job_ms"], r["one_for_all_ms"]] for r in rows],
    )
    print(f"Recording one batch's progress, medians of {args.rounds} alternations\n{table}")
    result = {"rounds": args.rounds, "rows": rows, "table": table}
    say(f"wrote {write_json('job_progress', result)}")
    return result


if __name__ == "__main__":
    main()

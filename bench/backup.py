"""Backup and restore time and size (README "Backup and restore").

Per size: a synthetic site (bench.synthetic: real words, sealed payloads, per-document keys,
Document/Chunk rows; no originals, as synthetic chunks have none) is built, then measured:
the backup (``take_backup`` with the running index, as inside ``serve``: the reported pause is how
long searches and writes waited for the cut), ``verify``, and a restore into an empty directory.
Sizes are compared with the data directory's own footprint in the same run.

    .venv/bin/python -m bench.backup --sizes 10k
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import synthetic
from bench.common import dir_bytes, format_table, human, load_sources, parse_sizes, ratio, say, write_json
from ingest.backup.archive import backup_key, write_key_file
from ingest.backup.restore import restore, verify_archive
from ingest.backup.snapshot import take_backup
from ingest.config import Settings
from ingest.embedding.sentence_transformers_embedder import SentenceTransformerEmbedder
from ingest.parsing.unstructured_parser import UnstructuredParser


def site_settings(root: Path, name: str) -> Settings:
    secrets = root / "secrets"
    secrets.mkdir(exist_ok=True)
    if not (secrets / "backup.key").exists():
        write_key_file(secrets / "backup.key")
    return Settings(
        data_dir=root / name,
        compliance={"master_key_file": secrets / "master.key"},  # type: ignore[arg-type]
        backup={"key_file": secrets / "backup.key", "erasure_ledger": secrets / "ledger.jsonl"},  # type: ignore[arg-type]
    )


def one_size(root: Path, ctx: dict[str, Any], size: int) -> dict[str, Any]:
    settings = site_settings(root, "site")
    components, _ = synthetic.build_site(settings, ctx["embedder"], ctx["parser"], ctx["pool"], ctx["sources"], size)
    key = backup_key(settings)
    archive = root / "site.enclave-backup"
    try:
        report = take_backup(settings, archive, key, index=components.index)
        data_bytes = dir_bytes(settings.data_dir)
    finally:
        components.close()
    started = time.perf_counter()
    verify_archive(archive, key)
    verify_s = time.perf_counter() - started
    target = site_settings(root, "restored")
    restored = restore(target, archive, key)
    return {
        "chunks": size,
        "documents": report.documents,
        "data_dir_bytes": data_bytes,
        "archive_bytes": report.archive_bytes,
        "archive_vs_data_dir": ratio(report.archive_bytes, data_bytes),
        "tar_bytes": report.plain_bytes,
        "backup_s": round(report.seconds, 2),
        "pause_ms": round(report.pause_s * 1000, 1),
        "verify_s": round(verify_s, 2),
        "restore_s": round(restored.seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k", help="chunk counts, e.g. 10k,100k")
    parser.add_argument("--pool", type=int, default=2000, help="real embeddings reused with noise beyond this")
    args = parser.parse_args()
    sizes = parse_sizes(args.sizes)
    embedder = SentenceTransformerEmbedder()
    embedder.warm_up()
    sources = load_sources()
    text_parser = UnstructuredParser()
    text_parser.warm_up()
    pool = synthetic.build_pool(embedder, sources, min(args.pool, max(sizes)), seed=1)
    ctx = {"embedder": embedder, "parser": text_parser, "sources": sources, "pool": pool}
    rows = []
    for size in sizes:
        root = Path(tempfile.mkdtemp(prefix="enclave-bench-backup-"))
        try:
            say(f"size {human(size)}")
            rows.append(one_size(root, ctx, size))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    path = write_json("backup", {"sizes": rows})
    headers = ["chunks", "data dir MB", "archive MB", "archive/data", "backup s", "pause ms", "verify s", "restore s"]
    print(
        format_table(
            headers,
            [
                [
                    human(r["chunks"]),
                    round(r["data_dir_bytes"] / 1e6, 1),
                    round(r["archive_bytes"] / 1e6, 1),
                    r["archive_vs_data_dir"],
                    r["backup_s"],
                    r["pause_ms"],
                    r["verify_s"],
                    r["restore_s"],
                ]
                for r in rows
            ],
        )
    )
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()

"""Copying the embedded Qdrant Edge index into a Qdrant server or cluster (``enclave index migrate``).

Points travel as stored: the same ids, both vectors and the payload, whose chunk text and title are
still sealed under each document's key (the keys stay in the relational store, so nothing is
decrypted on the way). Ids are deterministic, so an interrupted copy is simply run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from qdrant_client import models

from ingest.errors import EnclaveError, ServiceUnavailable
from ingest.index.qdrant_client_index import QdrantClientIndex
from ingest.index.qdrant_edge_index import DENSE, SPARSE


class TransferIncomplete(EnclaveError):
    """The target holds fewer points than the source after the copy."""

    code = "index_transfer_incomplete"
    retryable = True


@dataclass(frozen=True)
class TransferReport:
    copied: int
    source_points: int
    target_points: int
    seconds: float


def open_source(path: Path) -> qe.EdgeShard | None:
    """Open the embedded index as it is on disk (its own stored configuration); ``None`` if there is none.

    :raises ServiceUnavailable: another process (``enclave serve``) has it open.
    """
    if not path.is_dir() or not any(path.iterdir()):
        return None
    try:
        return qe.EdgeShard.load(str(path))
    except Exception as exc:
        if "WouldBlock" in str(exc):
            raise ServiceUnavailable(
                f"the index at {path} is open in another Enclave process; stop `enclave serve` "
                "and the workers, then run the migration again"
            ) from exc
        raise


def source_dimension(source: qe.EdgeShard) -> int | None:
    """The dense vector size of the stored points (``None`` for an empty index)."""
    records, _ = source.scroll(qe.ScrollRequest(limit=1, with_vector=[DENSE]))
    dense = records[0].vector.get(DENSE) if records and isinstance(records[0].vector, dict) else None
    return len(dense) if isinstance(dense, list) else None


def copy_edge_to_cluster(
    source: qe.EdgeShard,
    target: QdrantClientIndex,
    *,
    batch: int = 256,
    on_batch: Callable[[int], None] | None = None,
) -> TransferReport:
    """Scroll every point of ``source`` in batches and upsert it into ``target`` (opened, collection made).

    :raises TransferIncomplete: the target counts fewer points than the source afterwards.
    """
    started, copied, offset = time.perf_counter(), 0, None
    while True:
        request = qe.ScrollRequest(offset=offset, limit=batch, with_payload=True, with_vector=True)
        records, offset = source.scroll(request)
        if records:
            target.upsert_points([_point(r) for r in records])
            copied += len(records)
            if on_batch is not None:
                on_batch(len(records))
        if offset is None:
            break
    source_points = int(source.count(qe.CountRequest(exact=True)))
    target_points = int(target.client.count(target.collection, exact=True).count)
    if target_points < source_points:
        raise TransferIncomplete(
            f"the target collection {target.collection!r} holds {target_points} points, "
            f"the embedded index {source_points}; run the migration again"
        )
    return TransferReport(copied, source_points, target_points, time.perf_counter() - started)


def _point(record: qe.Record) -> models.PointStruct:
    stored: dict[str, Any] = record.vector if isinstance(record.vector, dict) else {}
    vector: dict[str, Any] = {}
    if DENSE in stored:
        vector[DENSE] = [float(x) for x in stored[DENSE]]
    if SPARSE in stored:
        sparse = stored[SPARSE]
        vector[SPARSE] = models.SparseVector(indices=list(sparse.indices), values=[float(v) for v in sparse.values])
    return models.PointStruct(id=str(record.id), vector=vector, payload=dict(record.payload or {}))

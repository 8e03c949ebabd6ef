"""Index upkeep that the engine does not do by itself."""

from __future__ import annotations

import logging
import time

from ingest.index.port import VectorIndex
from ingest.index.swap import innermost

log = logging.getLogger(__name__)


def build_graph_if_due(index: VectorIndex) -> bool:
    """Build the nearest-neighbour graph of the dense vectors that lack one, once enough do.

    Qdrant Edge runs no background optimiser, so an index filled by ingestion alone answers every
    dense search by scanning every vector. The ingest workers call this after draining the queue: the
    innermost adapter says whether a graph is due (``graph_due``, Qdrant Edge only) and ``optimize``
    goes through the wrappers (the swap lock's maintenance side, as a vacuum does). No lock of ours
    holds searches back meanwhile; writes wait. Returns whether a graph was built.
    """
    due = getattr(innermost(index), "graph_due", None)
    optimize = getattr(index, "optimize", None)
    if due is None or optimize is None or not due():
        return False
    started = time.perf_counter()
    changed = bool(optimize())
    log.info("built the index graph seconds=%.1f changed=%s", time.perf_counter() - started, changed)
    return changed

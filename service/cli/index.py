"""``enclave index …``: upgrade the embedded Qdrant Edge index, re-embed it with another embedder, or move it
into a Qdrant server or cluster."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from ingest.compliance import build_compliance
from ingest.config import get_settings
from ingest.index.qdrant_edge_index import is_legacy
from ingest.keys.sealed import SealedIndex
from ingest.rebuild import rebuild_index
from ingest.runtime import build_components, cluster_config, edge_index
from ingest.store.db import create_schema, make_engine

if TYPE_CHECKING:
    import qdrant_edge as qe

    from ingest.index.qdrant_client_index import ClusterConfig, QdrantClientIndex
    from ingest.index.transfer import TransferReport

index_app = typer.Typer(
    no_args_is_help=True, help="Vector index: upgrade the embedded index, or copy it into a Qdrant cluster."
)
out = Console()
err = Console(stderr=True)
TO_HELP = "Qdrant URL (http://qdrant:6333), or a directory for qdrant-client's local mode"


@index_app.command()
def migrate(
    to: Annotated[str, typer.Option("--to", help=TO_HELP)],
    collection: Annotated[
        str | None, typer.Option(help="target collection (default ENCLAVE_INDEX__COLLECTION)")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="points per scroll and upsert")] = 256,
    shards: Annotated[int | None, typer.Option(min=1, help="shards of a new collection")] = None,
    replication_factor: Annotated[int | None, typer.Option(min=1, help="copies of each shard")] = None,
    write_consistency: Annotated[int | None, typer.Option(min=1, help="replicas that acknowledge a write")] = None,
) -> None:
    """Copy every point (vectors and sealed payload) of the embedded index into a Qdrant collection.

    Stop `enclave serve` first (the embedded index is opened exclusively). Running it again is safe.
    """
    from qdrant_client import QdrantClient  # lazy: qdrant-client takes 0.8 s to import

    from ingest.index.qdrant_client_index import QdrantClientIndex  # lazy: qdrant-client
    from ingest.index.transfer import open_source, source_dimension  # lazy: qdrant-client

    if is_legacy(get_settings().index_dir):
        raise typer.BadParameter(
            "the embedded index was written by an earlier Enclave: run `enclave index upgrade` first", param_hint="--to"
        )
    if to == ":memory:":
        raise typer.BadParameter(
            "an in-memory target vanishes with this process; give a URL or a directory", param_hint="--to"
        )
    remote = to.startswith(("http://", "https://"))
    config = _target_config(to if remote else None, collection, shards, replication_factor, write_consistency)
    index_dir = get_settings().index_dir
    source = open_source(index_dir)
    dim = source_dimension(source) if source is not None else None
    if source is None or dim is None:
        out.print(f"the embedded index at {index_dir} is empty: nothing to copy")
        return
    try:
        report = _copy(source, QdrantClientIndex(dim, config, client=None if remote else QdrantClient(path=to)), batch)
    finally:
        source.close()
    out.print(
        f"copied {report.copied} points in {report.seconds:.1f} s; the collection {config.collection!r} holds "
        f"{report.target_points}, the embedded index {report.source_points}"
    )
    if remote:
        out.print(
            f"next: ENCLAVE_INDEX__BACKEND=qdrant ENCLAVE_INDEX__URL={to} ENCLAVE_INDEX__COLLECTION={config.collection}"
        )


@index_app.command()
def upgrade() -> None:
    """Rewrite an embedded index written by an earlier Enclave in the current format.

    The current format keys every BM25 term id under its tenant's key and keeps no write-ahead log;
    nothing is re-embedded. `enclave serve` and `enclave ingest` do this by themselves when they open
    an index of the earlier format; this command does it alone (stop `enclave serve` first).
    """
    from ingest.index.transfer import open_source, source_dimension  # lazy: imports qdrant-client (0.8 s)

    settings = get_settings()
    if not is_legacy(settings.index_dir):
        out.print(f"the embedded index at {settings.index_dir} is already in the current format")
        return
    source = open_source(settings.index_dir)
    dim = source_dimension(source) if source is not None else None
    if source is not None:
        source.close()
    if dim is None:
        out.print(f"the embedded index at {settings.index_dir} is empty: it is recreated when Enclave next opens it")
        return
    engine = make_engine(settings.resolved_database_url)
    try:
        create_schema(engine)
        edge = edge_index(settings.index, settings.index_dir, dim)
        index = SealedIndex(edge, build_compliance(settings, engine).keyring)
        index.warm_up()  # upgrades it
        points = edge.points()
        index.close()
    finally:
        engine.dispose()
    out.print(f"upgraded the embedded index at {settings.index_dir}: {points} points, term ids keyed per tenant")


@index_app.command()
def rebuild() -> None:
    """Re-embed every document with the configured embedder (ENCLAVE_EMBEDDER__BACKEND), then record it.

    Needed after changing the embedder of a site that holds documents: the site refuses to start with
    an embedder other than the one that made its vectors. Each document is re-read from its stored
    original. Stop `enclave serve` and the workers first. Running it again is safe.
    """
    settings = get_settings()
    components = build_components(settings, embedder_check=False)
    try:
        with Progress(console=err) as progress:
            task = progress.add_task(f"re-embedding with {components.embedder.model_name}", total=None)
            report = rebuild_index(components, lambda done, total: progress.update(task, completed=done, total=total))
    finally:
        components.close()
    for document_id, why in report.failed.items():
        err.print(f"error: document {document_id}: {why}")
    if report.failed:
        err.print(
            f"{len(report.failed)} document(s) failed (they keep their old vectors), so the site still refuses "
            "the new embedder: fix or delete them and run `enclave index rebuild` again"
        )
        raise typer.Exit(2)
    out.print(
        f"re-embedded {report.documents} documents ({report.chunks} chunks) with {components.embedder.model_name} "
        f"in {report.seconds:.1f} s; the site now uses it"
    )


def _target_config(
    url: str | None,
    collection: str | None,
    shards: int | None,
    replication_factor: int | None,
    write_consistency: int | None,
) -> ClusterConfig:
    base = cluster_config(get_settings().index, url=url, collection=collection)
    return dataclasses.replace(
        base,
        shards=shards or base.shards,
        replication_factor=replication_factor or base.replication_factor,
        write_consistency=write_consistency or base.write_consistency,
    )


def _copy(source: qe.EdgeShard, target: QdrantClientIndex, batch: int) -> TransferReport:
    from ingest.index.transfer import copy_edge_to_cluster  # lazy: imports qdrant-client (0.8 s)

    target.warm_up()
    try:
        with Progress(console=err) as progress:
            task = progress.add_task("copying points", total=None)
            return copy_edge_to_cluster(source, target, batch=batch, on_batch=lambda n: progress.advance(task, n))
    finally:
        target.close()

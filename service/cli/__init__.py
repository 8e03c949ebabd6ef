"""The ``enclave`` command line: the root command, its ``--url`` mode, and where every command is registered.

One module per command or command group: :mod:`~service.cli.documents` (ingest, status, worker),
:mod:`~service.cli.ask`, :mod:`~service.cli.serving` (serve, up, export-model),
:mod:`~service.cli.evaluation` (eval), :mod:`~service.cli.backup` (backup, restore), and the groups
:mod:`~service.cli.audit`, :mod:`~service.cli.kms`, :mod:`~service.cli.retention`, :mod:`~service.cli.keys`,
:mod:`~service.cli.policy`, :mod:`~service.cli.db` and :mod:`~service.cli.index`. They share
:mod:`~service.cli.shared` (process set-up, the store) and never import this module.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from service.cli import (
    ask,
    audit,
    backup,
    db,
    documents,
    evaluation,
    index,
    keys,
    kms,
    policy,
    remote,
    retention,
    serving,
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Enclave: cited answers from your own documents.")
# the order here is the order `enclave --help` lists them in; commands are registered by module
# (never `from service.cli.backup import backup`: that would hide the module behind the function)
app.add_typer(audit.audit_app, name="audit")
app.add_typer(kms.kms_app, name="kms")
app.add_typer(retention.retention_app, name="retention")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(policy.policy_app, name="policy")
app.add_typer(db.db_app, name="db")
app.add_typer(index.index_app, name="index")
app.command(name="backup", help=backup.BACKUP_HELP)(backup.backup)
app.command(name="restore")(backup.restore)
app.command(name="ingest")(documents.ingest)
app.command(name="ask")(ask.ask)
app.command(name="serve")(serving.serve)
app.command(name="worker")(documents.worker)
app.command(name="status")(documents.status)
app.command(name="up")(serving.up)
app.command(name="export-model")(serving.export_model)
app.command(name="eval")(evaluation.evaluate)


@app.callback()
def remote_mode(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar="ENCLAVE_URL", help="a running Enclave server for ask, ingest and status"),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="ENCLAVE_API_KEY", help="API key for --url")
    ] = None,
) -> None:
    """Without --url, commands open the local data directory; with it, ask/ingest/status call that server."""
    if url and ctx.invoked_subcommand not in remote.REMOTE_COMMANDS:
        if getattr(ctx.get_parameter_source("url"), "name", None) != "COMMANDLINE":
            url = None  # an exported ENCLAVE_URL (for remote asks) must not break local admin commands
        else:
            raise typer.BadParameter(
                f"--url works with {', '.join(sorted(remote.REMOTE_COMMANDS))}", param_hint="--url"
            )
    remote.REMOTE.url, remote.REMOTE.api_key = url, api_key


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

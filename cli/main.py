"""The `modelwire` command group: every command, registered from its own module.

Commands are thin: parse, call one library function, render. stdout carries
results, stderr logs and errors. Exit status: 0 success, 1 a modelwire error
(printed once, without a traceback), 2 a usage error.
"""

from __future__ import annotations

import click

from modelwire import __version__
from modelwire.cli.blueprints import check, graph, run
from modelwire.cli.bundles import dump, stubs
from modelwire.cli.calls import call, health
from modelwire.cli.catalog import publish, pull, push, search, show
from modelwire.cli.catalog_admin import catalog
from modelwire.cli.containers import build, export
from modelwire.cli.serving import serve
from modelwire.cli.validate import validate

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelwire")
def main() -> None:
    """Turn typed Python models into gRPC services, share them, and compose them."""


for _command in (
    dump,
    serve,
    stubs,
    call,
    health,
    check,
    run,
    graph,
    build,
    export,
    push,
    pull,
    publish,
    search,
    show,
    catalog,
    validate,
):
    main.add_command(_command)

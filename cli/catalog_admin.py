"""CLI commands of a catalog's admin: `catalog init`, `catalog serve` and `catalog user`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from modelwire.cli._kit import reports_errors, setup_logging
from modelwire.cli.catalog_validation import validation_config, validation_options
from modelwire.cli.options import (
    CATALOG_PORT,
    GRACE,
    HOST,
    logging_options,
    tls_server_options,
)
from modelwire.config import ServerTls

__all__ = ["catalog"]


@click.group()
def catalog() -> None:
    """Run a catalog and manage its users."""


def _data_option(help: str) -> Callable[[Callable[..., object]], Callable[..., object]]:
    return click.option(
        "--data", type=click.Path(file_okay=False, path_type=Path), required=True, help=help
    )


@catalog.command("init")
@_data_option("The data directory to create (the SQLite database and the bundle blobs).")
@reports_errors
def catalog_init(data: Path) -> None:
    """Create a new, empty catalog in DATA (nothing changes if it holds one)."""
    from modelwire.catalog.store import Store

    store = Store(data, create=True)
    click.echo(f"created a new catalog in {data}" if store.created else f"{data} holds a catalog")


@catalog.command("serve")
@_data_option("Data directory: the SQLite database and the bundle blobs.")
@click.option(
    "--init",
    is_flag=True,
    help="Create a new catalog in DATA if it holds none (else that is an error).",
)
@HOST
@CATALOG_PORT
@click.option(
    "--max-upload-mb",
    type=click.IntRange(1),
    default=4096,
    show_default=True,
    help="The largest bundle a push may upload.",
)
@GRACE
@validation_options
@tls_server_options
@logging_options
@reports_errors
def catalog_serve(
    data: Path,
    init: bool,
    host: str,
    port: int,
    max_upload_mb: int,
    grace: float,
    tls: ServerTls | None,
    log_level: str,
    log_format: str | None,
) -> None:
    """Serve the catalog in DATA until SIGTERM (a new one only with --init), validating
    every pushed version."""
    setup_logging(log_level, log_format)
    from modelwire.catalog.server import serve
    from modelwire.config import CatalogConfig

    config = CatalogConfig(
        data=str(data),
        host=host,
        port=port,
        max_upload_mb=max_upload_mb,
        grace_seconds=grace,
        init=init,
        validation=validation_config(),
        tls=tls,
    )
    sys.exit(serve(config, announce=click.echo))


@catalog.group("user")
def catalog_user() -> None:
    """Manage the catalog's users."""


@catalog_user.command("add")
@click.argument("name")
@_data_option("The catalog's data directory (a new catalog is made there if it holds none).")
@reports_errors
def user_add(name: str, data: Path) -> None:
    """Create user NAME; prints its bearer token as the last line (shown only once).

    The first user of a new catalog is made this way, so DATA is created if it holds
    no catalog (and stderr says so: a mistyped DATA shows at once).
    """
    from modelwire.catalog.store import Store
    from modelwire.catalog.users import check_user_name

    check_user_name(name)  # before a new catalog is made for it
    store = Store(data, create=True)
    token = store.add_user(name)
    if store.created:
        click.echo(f"created a new catalog in {data}", err=True)
    click.echo(f"created user {name}; its token (stored only as a hash, shown once):")
    click.echo(token)


@catalog_user.command("token")
@click.argument("name")
@_data_option("The catalog's data directory.")
@reports_errors
def user_token(name: str, data: Path) -> None:
    """Issue a new bearer token for user NAME (last line); the old token stops working."""
    from modelwire.catalog.store import Store

    token = Store(data).reissue_token(name)
    click.echo(
        f"new token for user {name}; the old one no longer works (stored only as a hash, "
        "shown once):"
    )
    click.echo(token)

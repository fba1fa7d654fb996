"""CLI command `serve`: one bundle as a gRPC and HTTP service until SIGTERM."""

from __future__ import annotations

import sys

import click

from modelwire.cli._kit import reports_errors, setup_logging
from modelwire.cli.options import (
    GRACE,
    HOST,
    LIVENESS_TIMEOUT,
    MAX_MESSAGE_MB,
    MAX_RESTARTS,
    METRICS_PORT,
    PORT,
    RESTART_BACKOFF,
    EnvOption,
    http_options,
    http_port_of,
    logging_options,
    tls_server_options,
)
from modelwire.config import ENV_SERVER, ENV_WORKERS, RuntimeConfig, ServerTls

__all__ = ["serve"]


@click.command()
@click.argument("bundle", type=click.Path(path_type=str))
@HOST
@PORT
@http_options
@click.option(
    "--workers",
    cls=EnvOption,
    envvar=ENV_WORKERS,
    show_envvar=True,
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Processes sharing the ports, for CPU-bound models.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    default=8,
    show_default=True,
    help="Request threads per worker (sync server).",
)
@click.option(
    "--server",
    "server_kind",
    cls=EnvOption,
    envvar=ENV_SERVER,
    show_envvar=True,
    type=click.Choice(["sync", "aio"]),
    default="sync",
    show_default=True,
    help="sync: thread pool, lowest latency; aio: asyncio, model on the event loop.",
)
@MAX_MESSAGE_MB
@METRICS_PORT
@GRACE
@RESTART_BACKOFF
@MAX_RESTARTS
@LIVENESS_TIMEOUT
@click.option(
    "--access-log/--no-access-log", default=False, show_default=True, help="Log one line per call."
)
@tls_server_options
@logging_options
@reports_errors
def serve(
    bundle: str,
    host: str,
    port: int,
    http_port: int,
    no_http: bool,
    workers: int,
    threads: int,
    server_kind: str,
    max_message_mb: int,
    metrics_port: int | None,
    grace: float,
    restart_backoff: float,
    max_restarts: int,
    liveness_timeout: float,
    access_log: bool,
    tls: ServerTls | None,
    log_level: str,
    log_format: str | None,
) -> None:
    """Serve BUNDLE over gRPC (health, reflection, metrics) and HTTP until SIGTERM.

    The HTTP face answers Connect (POST /<package>.<Service>/<Method>, JSON or
    protobuf), the Acumos runner's contract (POST /model/methods/<method>), and serves
    /healthz, /readyz, /metrics, /openapi.json and an interactive /docs page.

    With --workers N, N processes share the port; one that exits or stops answering
    its health checks is replaced (the --restart-backoff, --max-restarts and
    --liveness-timeout options say how).
    """
    setup_logging(log_level, log_format)
    from modelwire.hosting.process import follow_parent
    from modelwire.runtime.server import serve as run

    follow_parent()  # started by `modelwire run` or a supervisor: die with it

    config = RuntimeConfig(
        host=host,
        port=port,
        http_port=http_port_of(http_port, no_http),
        workers=workers,
        threads=threads,
        server=server_kind,
        max_message_mb=max_message_mb,
        metrics_port=metrics_port,
        grace_seconds=grace,
        access_log=access_log,
        restart_backoff=restart_backoff,
        max_restarts=max_restarts,
        liveness_seconds=liveness_timeout,
        tls=tls,
    )
    sys.exit(run(bundle, config, announce=click.echo))

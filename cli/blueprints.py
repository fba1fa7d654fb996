"""CLI commands for blueprints: `check`, `run`, `graph` (registered on `modelwire`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from modelwire.cli._kit import catalog_resolver, reports_errors, setup_logging
from modelwire.cli.options import (
    GRACE,
    HOST,
    LIVENESS_TIMEOUT,
    MAX_MESSAGE_MB,
    MAX_RESTARTS,
    METRICS_PORT,
    PORT,
    RESTART_BACKOFF,
    STARTUP_TIMEOUT,
    http_options,
    http_port_of,
    logging_options,
    tls_server_options,
)
from modelwire.config import (
    ENV_METRICS_PORT,
    ENV_TLS_CERT,
    ENV_TLS_CLIENT_CA,
    ENV_TLS_KEY,
    BrokerConfig,
    ServerTls,
)

__all__ = ["check", "graph", "run"]

_BLUEPRINT = click.Path(exists=True, dir_okay=False, path_type=Path)


class _Replicas(click.ParamType[tuple[str, int]]):
    """`MODEL=N`: how many copies of a model `run` starts."""

    name = "MODEL=N"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value  # already converted
        text = str(value)
        model, eq, count = text.partition("=")
        model, count = model.strip(), count.strip()
        if not eq or not model:
            self.fail(f"{text!r} is not MODEL=N, e.g. classifier=3", param, ctx)
        if not count.isdigit() or int(count) < 1:
            self.fail(
                f"{text!r}: the number of replicas must be a whole number from 1, not {count!r}",
                param,
                ctx,
            )
        return model, int(count)


_FUSE = click.option(
    "--fuse",
    is_flag=True,
    help="Fuse every bundle model that can share the broker's Python environment into the "
    "broker's process (as the blueprint's 'fuse: true'); a model that cannot is an error "
    "unless it says 'fuse: false'.",
)


@click.command()
@click.argument("blueprint", type=_BLUEPRINT)
@_FUSE
@reports_errors
def check(blueprint: Path, fuse: bool) -> None:
    """Type-check BLUEPRINT before anything runs; print its methods and their types.

    Every problem is reported, compiler style, and the exit status is 1; on
    success the solution's rpcs are printed and the exit status is 0. Where the
    blueprint (or --fuse) asks for fusing, each bundle model's line says whether it
    is fused into the broker, and if not, why.
    """
    from modelwire.broker.check import check_file
    from modelwire.broker.fusing import fusing_asked
    from modelwire.codegen.compat import render_type

    plan, _, _ = check_file(blueprint, catalog=catalog_resolver(), fuse=fuse)
    s = plan.schema

    def fields(message: str) -> str:
        msg = s.message(message)
        inner = ", ".join(f"{f.name}: {render_type(f.type, top=False)}" for f in msg.fields)
        return f"{message} {{{inner}}}"

    click.echo(f"{blueprint}: ok, service {s.package}.{s.service}")
    for m in s.methods:
        n = len(plan.methods[m.name].steps)
        click.echo(
            f"  rpc {m.rpc}({m.request}) returns ({m.response}), {n} step{'s' if n != 1 else ''}"
        )
        click.echo(f"    {fields(m.request)}")
        click.echo(f"    {fields(m.response)}")
    fusing = fusing_asked(plan.blueprint, fuse)
    for ref in plan.blueprint.models.values():
        how = "running at" if ref.kind == "address" else ref.kind
        click.echo(f"  model {ref.name}: {how} {ref.value}")
        verdict = plan.fusing.get(ref.name)
        if fusing and verdict is not None:
            click.echo(f"    {verdict.describe()}")


@click.command()
@click.argument("blueprint", type=_BLUEPRINT)
@HOST
@PORT
@http_options
@MAX_MESSAGE_MB
@METRICS_PORT
@GRACE
@STARTUP_TIMEOUT
@RESTART_BACKOFF
@MAX_RESTARTS
@LIVENESS_TIMEOUT
@click.option(
    "--docker",
    is_flag=True,
    help="Run the bundle models as containers on a private Docker network, not as processes.",
)
@_FUSE
@click.option(
    "--replicas",
    "replica_counts",
    type=_Replicas(),
    multiple=True,
    help="Start N copies of MODEL (over its 'replicas' in the blueprint); repeatable.",
)
@click.option(
    "--base",
    default=None,
    help="With --docker: the base image of the models' images [default: python:3.11-slim].",
)
@click.option(
    "--image-prefix",
    default="modelwire",
    show_default=True,
    help="With --docker: images are PREFIX/<model>:<version>-<bundle digest>.",
)
@tls_server_options
@logging_options
@reports_errors
def run(
    blueprint: Path,
    host: str,
    port: int,
    http_port: int,
    no_http: bool,
    max_message_mb: int,
    metrics_port: int | None,
    grace: float,
    startup_timeout: float,
    restart_backoff: float,
    max_restarts: int,
    liveness_timeout: float,
    docker: bool,
    replica_counts: tuple[tuple[str, int], ...],
    fuse: bool,
    base: str | None,
    image_prefix: str,
    tls: ServerTls | None,
    log_level: str,
    log_format: str | None,
) -> None:
    """Check BLUEPRINT, start its models, and serve the solution until SIGTERM.

    Every `bundle:` model runs as a local `modelwire serve` process (gRPC only: the
    broker needs no HTTP of its models), or with --docker as a container of its image
    (built once per bundle digest, then reused) on a Docker network made for this run.
    The solution answers gRPC and HTTP. A model that exits, or stops answering its
    health checks, is restarted (with backoff when it keeps failing); meanwhile the
    methods that need it report NOT_SERVING. Ctrl-C or SIGTERM stops the solution and
    then every model, and removes the containers and the network.
    A model with `replicas: N` (or --replicas MODEL=N) runs as N copies, and the
    solution balances its calls over those that serve.
    With --fuse (or 'fuse: true' in the blueprint) the models that can are loaded into
    the broker's process instead and called directly.
    """
    setup_logging(log_level, log_format)
    from modelwire.broker.launch import run as run_blueprint

    # MODELWIRE_METRICS_PORT set the solution's metrics port, MODELWIRE_TLS_* its TLS; the
    # `modelwire serve` models inherit this environment and would each take them too
    for name in (ENV_METRICS_PORT, ENV_TLS_CERT, ENV_TLS_KEY, ENV_TLS_CLIENT_CA):
        os.environ.pop(name, None)
    from modelwire.containers.images import DEFAULT_BASE

    config = BrokerConfig(
        host=host,
        port=port,
        http_port=http_port_of(http_port, no_http),
        max_message_mb=max_message_mb,
        metrics_port=metrics_port,
        grace_seconds=grace,
        startup_seconds=startup_timeout,
        docker=docker,
        fuse=fuse,
        restart_backoff=restart_backoff,
        max_restarts=max_restarts,
        liveness_seconds=liveness_timeout,
        tls=tls,
    )
    status = run_blueprint(
        blueprint,
        config,
        announce=click.echo,
        catalog=catalog_resolver(),
        base=base or DEFAULT_BASE,
        image_prefix=image_prefix,
        replicas=dict(replica_counts),
    )
    sys.exit(status)


@click.command()
@click.argument("blueprint", type=_BLUEPRINT)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write: .dot, .svg or .png (svg/png need Graphviz's dot).",
)
@reports_errors
def graph(blueprint: Path, output: Path) -> None:
    """Draw BLUEPRINT's steps and the types on its edges."""
    from modelwire.broker.check import check_file
    from modelwire.broker.graph import write_graph

    plan, _, _ = check_file(blueprint, catalog=catalog_resolver())
    try:
        write_graph(plan, output)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--output'") from None
    click.echo(f"wrote {output}")

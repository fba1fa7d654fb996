"""`modelwire validate BUNDLE`, and the `--example METHOD=JSON` option of `modelwire dump`.

Thin: parse, call `modelwire.containers.validation.validate`, render its report
(`modelwire.bundle.report`). stdout carries the report (text, or JSON with `--json`);
stderr the progress and, when the validation failed, its reason; the exit status is 1
then.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from modelwire.cli._kit import reports_errors, setup_logging
from modelwire.cli.options import logging_options

__all__ = ["example_option", "examples_of", "validate"]

F = TypeVar("F", bound=Callable[..., Any])


def example_option(fn: F) -> F:
    """`--example METHOD=JSON` (repeatable), for `modelwire dump`."""
    return click.option(
        "--example",
        "examples",
        multiple=True,
        metavar="METHOD=JSON",
        help="An example request of METHOD in protobuf JSON, e.g. "
        "classify='{\"sepal_length\": [5.1]}'; the model's answer is recorded with it "
        "(repeatable).",
    )(fn)


def examples_of(values: tuple[str, ...]) -> dict[str, list[Any]] | None:
    """The `--example` values as `dump(examples=...)` takes them (None: none given)."""
    if not values:
        return None
    from modelwire.bundle.examples import parse_example_option

    try:
        return dict(parse_example_option(values))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--example'") from None


def _memory(value: str) -> int:
    from modelwire.containers.sandbox import memory_bytes
    from modelwire.errors import ConfigError

    try:
        return memory_bytes(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None


@click.command()
@click.argument("bundle", type=click.Path(path_type=str))
@click.option(
    "--docker",
    is_flag=True,
    help="Run it in its image (built if needed), confined: no network, a read-only root, "
    "a non-root user, memory/CPU/time limits. Without it: a fresh venv on this machine "
    "(less isolated).",
)
@click.option(
    "--load-timeout",
    type=click.FloatRange(0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds the model has to report SERVING.",
)
@click.option(
    "--call-timeout",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds each call may take.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=600.0,
    show_default=True,
    help="Seconds loading and calling may take in all; then the model is stopped.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1, 10000),
    default=5,
    show_default=True,
    help="Times each example is sent (for the p50 latency).",
)
@click.option(
    "--memory",
    default="2g",
    show_default=True,
    callback=lambda ctx, param, value: _memory(value),
    help="Memory limit (512m, 2g): the container's, or in a venv the model's address space.",
)
@click.option(
    "--cpus",
    type=click.FloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    help="CPUs the container may use (--docker).",
)
@click.option(
    "--network/--no-network",
    default=False,
    show_default=True,
    help="Give the container a network (--docker).",
)
@click.option(
    "--user",
    default=None,
    help="Run the model as this user: a name or uid in a venv (needs root), uid[:gid] "
    "in a container (default: the image's non-root user).",
)
@click.option("--base", default=None, help="Base image [default: python:<bundle's>-slim].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@logging_options
@reports_errors
def validate(
    bundle: str,
    docker: bool,
    load_timeout: float,
    call_timeout: float,
    timeout: float,
    repeat: int,
    memory: int,
    cpus: float,
    network: bool,
    user: str | None,
    base: str | None,
    as_json: bool,
    log_level: str,
    log_format: str | None,
) -> None:
    """Prove that BUNDLE loads and answers its examples in an environment made from its
    own files: a fresh venv from its requirements (or its image with --docker).

    Every example is sent over gRPC and its answer compared with the one recorded at
    dump; a model without examples gets requests generated from its schema, checked
    for an answer only. Exit status 1 when it fails, with the reason on stderr.
    """
    setup_logging(log_level, log_format)
    from modelwire.bundle.report import render_report, report_json
    from modelwire.containers.validation import validate as run

    who: str | int | None = user
    if user is not None and not docker and user.isdigit():
        who = int(user)
    report = run(
        bundle,
        docker=docker,
        load_timeout=load_timeout,
        call_timeout=call_timeout,
        timeout=timeout,
        repeat=repeat,
        memory=memory,
        cpus=cpus,
        network=network,
        user=who,
        base=base,
        progress=lambda line: click.echo(f"  {line}", err=True),
    )
    click.echo(json.dumps(report_json(report), indent=2) if as_json else render_report(report))
    if not report.passed:
        click.echo(f"error: {report.reason}", err=True)
        sys.exit(1)

"""Pieces every CLI command shares: error rendering, logging options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from modelwire.config import ENV_LOG_FORMAT, ENV_LOG_LEVEL
from modelwire.errors import BlueprintError, ModelwireError

__all__ = ["logging_options", "reports_errors", "setup_logging"]

F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(fn: F) -> F:
    """Render a ModelwireError once, without a traceback, and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BlueprintError as exc:
            # compiler-style diagnostics carry their own "FILE:LINE:COL: error[...]" prefix
            text = str(exc)
            click.echo(text if getattr(exc, "diagnostics", None) else f"error: {text}", err=True)
            sys.exit(1)
        except ModelwireError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def logging_options(fn: F) -> F:
    fn = click.option(
        "--log-format",
        type=click.Choice(["json", "console"]),
        envvar=ENV_LOG_FORMAT,
        default=None,
        help="Log format [default: console on a terminal, else json].",
    )(fn)
    return click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        envvar=ENV_LOG_LEVEL,
        default="info",
        show_default=True,
        help="Log level.",
    )(fn)


def setup_logging(level: str, fmt: str | None) -> None:
    from modelwire import _logging

    _logging.configure(level, fmt)

"""The catalog's validation on the command line: the `--validate...` options of `catalog
serve`, and the lines `show` prints about a version's validation.

The options do not reach the command's function one by one: they are collected into
`ctx.meta` and read back as one `ValidationConfig` (`validation_config()`), so `catalog
serve` takes them with one decorator and one call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from modelwire.catalog.listing import ValidationInfo
    from modelwire.config import ValidationConfig

__all__ = ["render_validation", "validation_config", "validation_options"]

F = TypeVar("F", bound=Callable[..., Any])
_META = "modelwire.validation"


def _keep(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta.setdefault(_META, {})[name] = value
        return value

    return store


def _memory(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from modelwire.containers.sandbox import memory_bytes
    from modelwire.errors import ConfigError

    try:
        size = memory_bytes(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None
    return int(_keep("memory")(ctx, param, size))


def _seconds(flag: str, name: str, default: float, text: str) -> Callable[[F], F]:
    return click.option(
        flag,
        type=click.FloatRange(0, min_open=True),
        default=default,
        show_default=True,
        expose_value=False,
        callback=_keep(name),
        help=text,
    )


def validation_options(fn: F) -> F:
    """`--validate MODE` and the sandbox's limits, for `catalog serve`."""
    options = [
        click.option(
            "--validate",
            type=click.Choice(["auto", "docker", "venv", "off"]),
            default="auto",
            show_default=True,
            expose_value=False,
            callback=_keep("mode"),
            help="Validate every pushed version: in its image as a sandbox (docker: no "
            "network, read-only root, non-root, limits), in a fresh venv on this machine "
            "(venv: NOT isolated), or not at all. auto: docker when an engine answers, else "
            "off (venv runs pushed code unconfined, so only you can turn it on).",
        ),
        click.option(
            "--validate-memory",
            default="2g",
            show_default=True,
            expose_value=False,
            callback=_memory,
            help="The model's memory limit during validation (512m, 2g).",
        ),
        click.option(
            "--validate-cpus",
            type=click.FloatRange(0, min_open=True),
            default=1.0,
            show_default=True,
            expose_value=False,
            callback=_keep("cpus"),
            help="CPUs a validation's container may use.",
        ),
        _seconds(
            "--validate-load-timeout",
            "load_timeout",
            120.0,
            "Seconds a validated model has to report SERVING.",
        ),
        _seconds(
            "--validate-timeout",
            "run_timeout",
            600.0,
            "Seconds a validated model may take to load and answer its examples.",
        ),
        _seconds(
            "--validate-job-timeout",
            "job_timeout",
            1800.0,
            "Seconds one validation may take in all, building its environment included.",
        ),
        click.option(
            "--image-prefix",
            default="modelwire-validation",
            show_default=True,
            expose_value=False,
            callback=_keep("image_prefix"),
            help="Validation images are PREFIX/<model>:<version>-<digest>; all but the "
            "newest 3 are removed.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def validation_config() -> ValidationConfig:
    """The `ValidationConfig` the options of the current command gave."""
    from modelwire.config import ValidationConfig

    given = dict(click.get_current_context().meta.get(_META, {}))
    return ValidationConfig(**given)


def render_validation(v: ValidationInfo) -> list[str]:
    """The lines `show` prints about a version's validation (the report comes after)."""
    if v.status == "passed":
        kind = (v.report or {}).get("examples_kind") or ""
        total = ((v.report or {}).get("phases") or {}).get("total")
        took = f", {total:.1f} s" if isinstance(total, (int, float)) else ""
        line = f"passed ({v.mode}{', ' + kind + ' examples' if kind else ''}{took})"
    elif v.status == "failed":
        failure = (v.report or {}).get("failure") or "failed"
        line = f"failed ({failure}): {v.reason}"
    elif v.status == "pending":
        if v.running:
            line = f"pending: running in {v.mode}" if v.mode else "pending: running"
            line += f": {v.note}" if v.note and v.note != "started" else ""
        else:
            line = "pending: queued" + (f", {v.ahead} ahead" if v.ahead else "")
            line += f"; {v.note}" if v.note else ""
    else:
        line = "unvalidated: no validating catalog has queued it"
    lines = [f"  validation   {line}"]
    if v.forced_status:
        lines.append(
            f"  forced       published with --force by {v.forced_by} at {v.forced_at}, "
            f"while its validation was {v.forced_status}"
        )
    return lines

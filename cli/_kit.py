"""Pieces every CLI command shares: error rendering, logging set-up, the catalog resolver."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from modelwire.errors import BlueprintError, ModelwireError

if TYPE_CHECKING:
    from modelwire.broker.resolve import CatalogBundle

__all__ = ["catalog_resolver", "reports_errors", "setup_logging"]

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


def setup_logging(level: str, fmt: str | None) -> None:
    from modelwire import _logging

    _logging.configure(level, fmt)


def catalog_resolver() -> Callable[[str], CatalogBundle] | None:
    """How blueprint `catalog:` models become local bundles, or None without a catalog.

    Uses MODELWIRE_CATALOG / MODELWIRE_TOKEN or the config file; pulls each model
    once per digest into ~/.cache/modelwire/bundles, and says how its validation went.
    """
    from modelwire.config import CatalogSettings
    from modelwire.errors import ConfigError

    try:
        settings = CatalogSettings.resolve()
    except ConfigError:
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache = cache / "modelwire" / "bundles"

    def resolve(ref: str) -> CatalogBundle:
        from modelwire.broker.resolve import CatalogBundle
        from modelwire.catalog.client import CatalogClient

        with CatalogClient(settings) as client:
            path, info = client.fetch(ref, cache)
        return CatalogBundle(path, f"{info.name}:{info.version}", info.validation)

    return resolve

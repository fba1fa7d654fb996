"""CLI commands of a catalog's clients: push, pull, publish, search, show (the admin's
`catalog ...` commands are `modelwire.cli.catalog_admin`'s)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from modelwire.cli._kit import reports_errors
from modelwire.cli.catalog_validation import render_validation
from modelwire.cli.options import tls_client_options
from modelwire.cli.progress import transfer
from modelwire.config import ENV_CATALOG, ENV_CATALOG_INSECURE, ENV_TOKEN, CatalogSettings

__all__ = ["publish", "pull", "push", "search", "show"]


def _catalog_options(fn: Callable[..., object]) -> Callable[..., object]:
    """--catalog, --token, the client TLS options and --insecure; the TLS ones are kept in
    the click context for `_client`, so commands take only (address, token)."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> object:
        ctx = click.get_current_context()
        ctx.meta["catalog_tls"] = (kwargs.pop("tls"), kwargs.pop("insecure"))
        return fn(*args, **kwargs)

    wrapped: Callable[..., object] = click.option(
        "--insecure",
        is_flag=True,
        help="Send the token in plaintext to a catalog that is not on loopback (a network "
        f"you trust) [env {ENV_CATALOG_INSECURE}].",
    )(tls_client_options(command))
    wrapped = click.option("--token", default=None, help=f"Bearer token [env {ENV_TOKEN}].")(
        wrapped
    )
    return click.option(
        "--catalog",
        "address",
        default=None,
        metavar="HOST:PORT",
        help=f"The catalog's address [env {ENV_CATALOG}, or the config file].",
    )(wrapped)


def _client(address: str | None, token: str | None) -> object:
    from modelwire.catalog.client import CatalogClient

    tls, insecure = click.get_current_context().meta["catalog_tls"]
    return CatalogClient(CatalogSettings.resolve(address, token, tls=tls, insecure=insecure))


def _checked_ref(ref: str, hint: str, *, need_version: bool = False) -> str:
    """REF if it is NAME[:VERSION] (NAME:VERSION with need_version), else a usage error."""
    from modelwire.catalog.client import parse_ref

    try:
        _, version = parse_ref(ref)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=f"'{hint}'") from None
    if need_version and not version:
        raise click.BadParameter(f"{ref!r} is not NAME:VERSION", param_hint=f"'{hint}'")
    return ref


@click.command()
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--allow-breaking",
    is_flag=True,
    help="Accept a version whose types break clients of the previous one.",
)
@_catalog_options
@reports_errors
def push(bundle: Path, allow_breaking: bool, address: str | None, token: str | None) -> None:
    """Upload BUNDLE (directory or zip) to the catalog, private to you until published."""
    from modelwire.catalog.client import bundle_ref
    from modelwire.hosting.process import tune_malloc

    tune_malloc()  # as the catalog server: its 1 MiB chunks stay on the heap
    name, version = bundle_ref(bundle)
    with (
        transfer(f"pushing {name}:{version}") as progress,
        _client(address, token) as client,  # type: ignore[attr-defined]
    ):
        info, created = client.push(bundle, allow_breaking=allow_breaking, progress=progress)
    verb = "pushed" if created else "already there:"
    click.echo(
        f"{verb} {info.name}:{info.version} (sha256 {info.sha256[:12]}, "
        f"{info.size} bytes, private until published)"
        if not info.published
        else f"{verb} {info.name}:{info.version} (sha256 {info.sha256[:12]})"
    )


@click.command()
@click.argument("ref", metavar="NAME[:VERSION]")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Bundle directory to write, or a path ending in .zip.",
)
@_catalog_options
@reports_errors
def pull(ref: str, output: Path, address: str | None, token: str | None) -> None:
    """Download a model's bundle (the latest version unless NAME:VERSION)."""
    from modelwire.hosting.process import tune_malloc

    _checked_ref(ref, "NAME[:VERSION]")
    tune_malloc()
    with (
        transfer(f"pulling {ref}") as progress,
        _client(address, token) as client,  # type: ignore[attr-defined]
    ):
        info = client.pull(ref, output, progress=progress)
    click.echo(f"pulled {info.name}:{info.version} to {output}")


@click.command()
@click.argument("ref", metavar="NAME:VERSION")
@click.option("--description", required=True, help="What the model does.")
@click.option("--category", required=True, help="E.g. classification, detection, nlp.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option(
    "--wait",
    type=click.FloatRange(0),
    default=0,
    metavar="SECONDS",
    help="Wait up to SECONDS for a pending validation to end first.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Publish even if its validation failed or is pending (recorded, and shown).",
)
@_catalog_options
@reports_errors
def publish(
    ref: str,
    description: str,
    category: str,
    tags: tuple[str, ...],
    wait: float,
    force: bool,
    address: str | None,
    token: str | None,
) -> None:
    """Make a model version public, with a description and a category.

    A version whose validation failed, or is still pending, is refused unless --force.
    """
    if ":" not in ref:
        raise click.BadParameter("publish needs NAME:VERSION", param_hint="'NAME:VERSION'")
    _checked_ref(ref, "NAME:VERSION", need_version=True)
    with _client(address, token) as client:  # type: ignore[attr-defined]
        if wait > 0:
            _, validation = client.validation(ref)
            if validation.status == "pending":
                click.echo(f"waiting up to {wait:g} s for the validation of {ref}", err=True)
                _, validation = client.wait_validated(ref, wait)
            click.echo(render_validation(validation)[0].strip(), err=True)
        info = client.publish(
            ref, description=description, category=category, tags=tags, force=force
        )
    click.echo(f"published {info.name}:{info.version} ({info.category})")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


@click.command()
@click.argument("text", required=False, default="")
@click.option("--category", default="", help="Only this category.")
@click.option("--tag", "tags", multiple=True, help="Only models with this tag (repeatable).")
@click.option(
    "--accepts",
    metavar="MODEL[:VER].METHOD",
    default=None,
    help="Models with a method that can take that method's response.",
)
@click.option(
    "--produces",
    metavar="MODEL[:VER].METHOD",
    default=None,
    help="Models with a method whose response that method can take.",
)
@click.option("--all-versions", is_flag=True, help="Every version, not only the latest.")
@click.option("--validated", is_flag=True, help="Only versions whose validation passed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for scripts.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@_catalog_options
@reports_errors
def search(
    text: str,
    category: str,
    tags: tuple[str, ...],
    accepts: str | None,
    produces: str | None,
    all_versions: bool,
    validated: bool,
    as_json: bool,
    limit: int,
    address: str | None,
    token: str | None,
) -> None:
    """Find models by TEXT (name, description, tags), category, tag, or type."""
    from modelwire.catalog.client import parse_method_ref

    for opt, ref in (("--accepts", accepts), ("--produces", produces)):
        if ref:
            try:
                parse_method_ref(ref)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=f"'{opt}'") from None
    with _client(address, token) as client:  # type: ignore[attr-defined]
        found = client.search(
            text,
            category=category,
            tags=tags,
            accepts=accepts,
            produces=produces,
            all_versions=all_versions,
            limit=limit,
            validated=validated,
        )
    if as_json:
        click.echo(json.dumps([m.to_json() for m in found], indent=2))
        return
    if not found:
        click.echo("no models found")
        return
    rows = [
        [
            m.name,
            m.version,
            "public" if m.published else "private",
            m.validation,
            m.category,
            ", ".join(x["name"] for x in m.methods),
            m.description if len(m.description) <= 50 else m.description[:49] + "…",
        ]
        for m in found
    ]
    click.echo(
        _table(
            rows,
            ["NAME", "VERSION", "VISIBILITY", "VALIDATION", "CATEGORY", "METHODS", "DESCRIPTION"],
        )
    )


@click.command()
@click.argument("ref", metavar="NAME[:VERSION]")
@_catalog_options
@reports_errors
def show(ref: str, address: str | None, token: str | None) -> None:
    """Print a model's metadata, its validation (status and report) and its proto."""
    from modelwire.bundle.report import render_report, report_from_json

    _checked_ref(ref, "NAME[:VERSION]")
    with _client(address, token) as client:  # type: ignore[attr-defined]
        info, proto, manifest, versions, validation = client.details(ref)
    click.echo(
        f"{info.name}:{info.version}  ({'public' if info.published else 'private'}, "
        f"owner {info.owner})"
    )
    if info.description:
        click.echo(f"  description  {info.description}")
    if info.category:
        click.echo(f"  category     {info.category}")
    if info.tags:
        click.echo(f"  tags         {', '.join(info.tags)}")
    click.echo(f"  service      {info.service}")
    for m in info.methods:
        click.echo(f"  rpc          {m['rpc']}({m['request']}) returns ({m['response']})")
        click.echo(f"    input      {m['input'] or '(no fields)'}")
        click.echo(f"    output     {m['output'] or '(no fields)'}")
    click.echo(f"  requires     {', '.join(manifest.get('requirements') or []) or '(nothing)'}")
    click.echo(f"  python       {manifest.get('python')}")
    click.echo(f"  sha256       {info.sha256}")
    click.echo(f"  versions     {', '.join(versions)}")
    for line in render_validation(validation):
        click.echo(line)
    if validation.report is not None:
        click.echo("")
        click.echo(render_report(report_from_json(validation.report)))
    click.echo("")
    click.echo(proto, nl=False)

"""CLI commands for containers: `build` (images) and `export` (compose, Kubernetes)."""

from __future__ import annotations

from pathlib import Path

import click

from modelwire._clikit import catalog_resolver, logging_options, reports_errors, setup_logging

__all__ = ["build", "default_tag", "export"]


def default_tag(name: str, version: str) -> str:
    """The image tag modelwire uses unless told otherwise: `modelwire/iris:1.0.0`."""
    return f"modelwire/{name}:{version}"


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-t",
    "--tag",
    default=None,
    help="Image NAME:TAG [default: modelwire/<model>:<version>]; not for blueprints.",
)
@click.option(
    "--base", default=None, help="Base image with the bundle's Python [default: python:3.11-slim]."
)
@click.option(
    "--context",
    "context_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the build context (Dockerfile, wheels, bundle) here.",
)
@logging_options
@reports_errors
def build(
    source: Path,
    tag: str | None,
    base: str | None,
    context_dir: Path | None,
    log_level: str,
    log_format: str | None,
) -> None:
    """Build the Docker image of a bundle, or of every bundle model of a blueprint (.yaml).

    The image installs its dependencies from a wheelhouse prepared here, so the
    build needs no network; the bundle is its last layer, so a new model version
    rebuilds only that layer.
    """
    setup_logging(log_level, log_format)
    from modelwire.bundle import read_manifest
    from modelwire.images import DEFAULT_BASE, build_image

    base = base or DEFAULT_BASE
    if source.suffix in (".yaml", ".yml"):
        if tag is not None:
            raise click.BadParameter(
                "a blueprint builds one image per model; drop --tag", param_hint="'--tag'"
            )
        from modelwire.broker.launch import check_file

        _, bundles, _ = check_file(source, catalog=catalog_resolver())
        targets: list[tuple[str | None, Path]] = list(bundles.items())
    else:
        targets = [(None, source)]
    for model, path in targets:
        m = read_manifest(path)
        image = tag or default_tag(m.name, m.version)
        label = f"{model} ({path})" if model else str(path)
        click.echo(f"building {image} for {label}", err=True)
        ctx = context_dir / m.name if context_dir and model else context_dir
        result = build_image(
            path,
            image,
            base=base,
            context_dir=ctx,
            progress=lambda line: click.echo(f"  {line}", err=True),
        )
        click.echo(
            f"built {result.tag} ({result.image_id[7:19]}, "
            f"{result.cached_steps} of {result.steps} steps cached)"
        )


@click.command()
@click.argument("blueprint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--compose",
    "compose_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write a docker-compose project (file + build contexts) here.",
)
@click.option(
    "--k8s",
    "k8s_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write Kubernetes manifests here.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=50051,
    show_default=True,
    help="The port the solution is published on.",
)
@click.option("--base", default=None, help="Base image [default: python:3.11-slim].")
@reports_errors
def export(
    blueprint: Path, compose_dir: Path | None, k8s_dir: Path | None, port: int, base: str | None
) -> None:
    """Write deployment files for BLUEPRINT: docker-compose (--compose) or Kubernetes (--k8s)."""
    if compose_dir is None and k8s_dir is None:
        raise click.UsageError("say where: --compose DIR and/or --k8s DIR")
    from modelwire.broker.export import export_compose, export_k8s
    from modelwire.images import DEFAULT_BASE

    if compose_dir is not None:
        export_compose(
            blueprint,
            compose_dir,
            port=port,
            base=base or DEFAULT_BASE,
            progress=lambda line: click.echo(f"  {line}", err=True),
            catalog=catalog_resolver(),
        )
        click.echo(
            f"wrote {compose_dir / 'docker-compose.yml'} "
            f"(run it: docker-compose -f {compose_dir / 'docker-compose.yml'} up)"
        )
    if k8s_dir is not None:
        files = export_k8s(blueprint, k8s_dir, port=port, catalog=catalog_resolver())
        click.echo(
            f"wrote {len(files)} manifests to {k8s_dir} (images: modelwire build "
            f"{blueprint}; then kubectl apply -f {k8s_dir})"
        )

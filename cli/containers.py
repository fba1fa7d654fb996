"""CLI commands for containers: `build` (images) and `export` (compose, Kubernetes)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from modelwire.cli._kit import catalog_resolver, reports_errors, setup_logging
from modelwire.cli.options import HTTP_PORT, PORT, logging_options
from modelwire.cli.progress import build_progress

if TYPE_CHECKING:
    from modelwire.containers.images import BuildResult

__all__ = ["build", "export"]


_PREFIX_HELP = (
    "Image name prefix (a registry and namespace, e.g. registry.example.com/ml): images are "
    "PREFIX/<model>:<version>."
)


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
@click.option("--image-prefix", default="modelwire", show_default=True, help=_PREFIX_HELP)
@click.option(
    "--context",
    "context_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the build context (Dockerfile, wheels, bundle) here.",
)
@click.option("--no-cache", is_flag=True, help="Build every layer again.")
@logging_options
@reports_errors
def build(
    source: Path,
    tag: str | None,
    base: str | None,
    image_prefix: str,
    context_dir: Path | None,
    no_cache: bool,
    log_level: str,
    log_format: str | None,
) -> None:
    """Build the Docker image of a bundle, or the images of a blueprint (.yaml).

    The image installs its dependencies from a wheelhouse prepared here and builds
    with no network; the bundle is its last layer, so a new model version rebuilds
    only that layer. A blueprint builds one image per bundle model and the
    broker's image: the images `modelwire export` names.
    """
    setup_logging(log_level, log_format)
    from modelwire.containers.images import DEFAULT_BASE, build_image, default_tag

    base = base or DEFAULT_BASE
    if source.suffix in (".yaml", ".yml"):
        if tag is not None:
            raise click.BadParameter(
                "a blueprint builds one image per model; drop --tag (see --image-prefix)",
                param_hint="'--tag'",
            )
        from modelwire.broker.export import build_images

        with build_progress() as progress:
            for name, result in build_images(
                source,
                base=base,
                prefix=image_prefix,
                progress=progress,
                catalog=catalog_resolver(),
                context_dir=context_dir,
                nocache=no_cache,
            ):
                click.echo(f"built {result.tag} for {name} ({_summary(result)})")
        return
    from modelwire.bundle import peek_manifest

    m = peek_manifest(source)  # build_image verifies the bundle
    image = tag or default_tag(m.name, m.version, image_prefix)
    click.echo(f"building {image} for {source}", err=True)
    with build_progress() as progress:
        result = build_image(
            source, image, base=base, context_dir=context_dir, progress=progress, nocache=no_cache
        )
    click.echo(f"built {result.tag} ({_summary(result)})")


def _summary(result: BuildResult) -> str:
    return f"{result.image_id[7:19]}, {result.cached_steps} of {result.steps} steps cached"


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
    "--swarm",
    "swarm_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write a Docker Swarm stack file (docker-stack.yml) here.",
)
@PORT
@HTTP_PORT
@click.option("--base", default=None, help="Base image [default: python:3.11-slim].")
@click.option("--image-prefix", default="modelwire", show_default=True, help=_PREFIX_HELP)
@reports_errors
def export(
    blueprint: Path,
    compose_dir: Path | None,
    k8s_dir: Path | None,
    swarm_dir: Path | None,
    port: int,
    http_port: int,
    base: str | None,
    image_prefix: str,
) -> None:
    """Write deployment files for BLUEPRINT: docker-compose (--compose), Kubernetes
    (--k8s) or a Docker Swarm stack (--swarm).

    The solution is published on --port (gRPC) and --http-port (HTTP).
    """
    if compose_dir is None and k8s_dir is None and swarm_dir is None:
        raise click.UsageError("say where: --compose DIR, --k8s DIR and/or --swarm DIR")
    for value, hint in ((port, "'--port'"), (http_port, "'--http-port'")):
        if value == 0:
            raise click.BadParameter(
                "an export publishes the solution on a fixed port; 0 (a free one) is for binding",
                param_hint=hint,
            )
    if port == http_port:
        raise click.BadParameter(
            f"{port} is --port too; the two faces need a port each", param_hint="'--http-port'"
        )
    from modelwire.broker.export import export_compose, export_k8s, export_swarm
    from modelwire.containers.images import DEFAULT_BASE

    if compose_dir is not None:
        with build_progress() as progress:
            export_compose(
                blueprint,
                compose_dir,
                port=port,
                http_port=http_port,
                base=base or DEFAULT_BASE,
                progress=progress,
                catalog=catalog_resolver(),
                prefix=image_prefix,
            )
        click.echo(
            f"wrote {compose_dir / 'docker-compose.yml'} "
            f"(run it: docker-compose -f {compose_dir / 'docker-compose.yml'} up)"
        )
    if k8s_dir is not None:
        files = export_k8s(
            blueprint,
            k8s_dir,
            port=port,
            http_port=http_port,
            catalog=catalog_resolver(),
            prefix=image_prefix,
        )
        click.echo(
            f"wrote {len(files)} manifests to {k8s_dir} (images: modelwire build {blueprint} "
            f"--image-prefix {image_prefix}, pushed where the cluster pulls from; then "
            f"kubectl apply -f {k8s_dir})"
        )
    if swarm_dir is not None:
        stack = export_swarm(
            blueprint,
            swarm_dir,
            port=port,
            http_port=http_port,
            catalog=catalog_resolver(),
            prefix=image_prefix,
        )
        click.echo(
            f"wrote {stack} (images: modelwire build {blueprint} --image-prefix "
            f"{image_prefix}; then docker stack deploy -c {stack} --resolve-image never NAME)"
        )

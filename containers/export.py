"""The container side of an export: build contexts and images for a solution's deployment.

`modelwire export --compose` writes a build context per model and one for the
broker (`write_contexts`), so `docker-compose up` builds everything with no
network; `modelwire build BLUEPRINT` builds the images an export names
(`build_images`). What is deployed comes in as data (a `Deployment` from
`modelwire.codegen.deploy`, the bundles it names, opened): the blueprint work that
makes it is the broker's (`modelwire.broker.export`), a layer above this one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from modelwire.bundle import Bundle
from modelwire.codegen.deploy import Deployment
from modelwire.containers.images import (
    DEFAULT_BASE,
    BuildResult,
    build_broker_image,
    build_image,
    write_broker_context,
    write_context,
)

__all__ = ["build_images", "write_contexts"]


def _quiet(line: str) -> None:
    pass


def write_contexts(
    deployment: Deployment,
    bundles: Mapping[str, Bundle],
    dest: Path,
    *,
    base: str = DEFAULT_BASE,
    progress: Callable[[str], None] = _quiet,
) -> list[Path]:
    """Write the build context of every model (`bundles`: model -> its bundle) and of the
    broker under `dest`, where the deployment's contexts say; returns them in that order.

    The wheels are for the bundles' Python on this machine's platform (the broker's
    for the lowest of them): the images build from the contexts alone.
    """
    written = []
    for m in deployment.models:
        progress(f"build context for {m.key} ({m.image})")
        written.append(
            write_context(bundles[m.key], dest / m.context, base=base, progress=progress)
        )
    pythons = sorted({b.manifest.python for b in bundles.values()})
    written.append(
        write_broker_context(
            deployment.blueprint,
            deployment.solution,
            dest / deployment.broker_context,
            base=base,
            python=pythons[0] if pythons else None,
            progress=progress,
        )
    )
    return written


def build_images(
    deployment: Deployment,
    bundles: Mapping[str, Bundle],
    *,
    base: str = DEFAULT_BASE,
    progress: Callable[[str], None] = _quiet,
    context_dir: Path | None = None,
    nocache: bool = False,
) -> list[tuple[str, BuildResult]]:
    """Build the images the deployment names: one per model, then the broker's.

    Args:
        context_dir: keep the build contexts there (as `write_contexts` lays them
            out); temporary ones otherwise.

    Returns:
        (model name or the solution's, build result) pairs, in build order.
    """
    results = []
    for m in deployment.models:
        progress(f"model {m.key} ({bundles[m.key].path}) -> {m.image}")
        ctx = context_dir / m.context if context_dir else None
        built = build_image(
            bundles[m.key], m.image, base=base, context_dir=ctx, progress=progress, nocache=nocache
        )
        results.append((m.key, built))
    progress(f"the broker of {deployment.solution} -> {deployment.broker_image}")
    ctx = context_dir / deployment.broker_context if context_dir else None
    built = build_broker_image(
        deployment.blueprint,
        deployment.solution,
        deployment.broker_image,
        base=base,
        context_dir=ctx,
        progress=progress,
    )
    results.append((deployment.solution, built))
    return results

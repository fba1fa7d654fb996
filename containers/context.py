"""Build contexts: the directory an image is built from, written without a Docker engine.

A model's context holds the Dockerfile (`modelwire.codegen.dockerfile`), the wheelhouse
(`modelwire.containers.wheelhouse`: every wheel the image installs, so its build needs no
network) and the bundle; a broker's holds the Dockerfile, the wheelhouse and the
blueprint. Files are written readable by the image's non-root user whatever the umask.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from modelwire import __version__
from modelwire.bundle import Bundle
from modelwire.bundle.writer import write_dir
from modelwire.codegen.dockerfile import (
    DockerfileSpec,
    render_broker_dockerfile,
    render_dockerfile,
)
from modelwire.containers.base_image import DEFAULT_BASE, BaseImage
from modelwire.containers.wheelhouse import Target, write_wheelhouse

__all__ = ["spec_for", "write_broker_context", "write_context"]

Progress = Callable[[str], None]


def _quiet(line: str) -> None:
    pass


def spec_for(bundle: Bundle, base: str, base_digest: str = "") -> DockerfileSpec:
    m = bundle.manifest
    return DockerfileSpec(
        base=base,
        name=m.name,
        version=m.version,
        description=m.description or "",
        methods=tuple(x.name for x in m.schema.methods),
        service=f"{m.schema.package}.{m.schema.service}",
        digest=bundle.digest(),
        modelwire_version=__version__,
        python=m.python,
        base_digest=base_digest,
    )


def write_context(
    bundle_path: str | os.PathLike[str] | Bundle,
    dest: Path,
    *,
    base: str = DEFAULT_BASE,
    base_image: BaseImage | None = None,
    progress: Progress = _quiet,
) -> Path:
    """Write a complete build context (Dockerfile, wheelhouse, bundle) into `dest`.

    Wheels are for `base_image` as probed, or, without it, for the bundle's Python
    on this machine's platform (no Docker engine needed). A `Bundle` already opened
    (and so verified) is used as it is.
    """
    bundle = bundle_path if isinstance(bundle_path, Bundle) else Bundle(bundle_path)
    m = bundle.manifest
    target = base_image.target if base_image else Target.host(m.python)
    dest.mkdir(parents=True, exist_ok=True)
    spec = spec_for(bundle, base, base_image.id if base_image else "")
    (dest / "Dockerfile").write_text(render_dockerfile(spec))
    write_wheelhouse(dest, target, list(m.requirements), progress)
    bundle_dir = dest / "bundle"
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    write_dir(bundle.files(), bundle_dir)
    # readable by the image's user whatever this machine's umask is
    for p in [bundle_dir, *bundle_dir.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    (dest / ".dockerignore").write_text("**/__pycache__\n")
    return dest


def write_broker_context(
    blueprint_text: str,
    solution: str,
    dest: Path,
    *,
    base: str = DEFAULT_BASE,
    base_image: BaseImage | None = None,
    python: str | None = None,
    progress: Progress = _quiet,
) -> Path:
    """A build context for a solution's broker image: modelwire and the blueprint.

    Wheels are for `base_image` as probed, or for `python` (default: this one's
    minor version) on this machine's platform.
    """
    if base_image is not None:
        target = base_image.target
    else:
        target = Target.host(python or f"{sys.version_info[0]}.{sys.version_info[1]}")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Dockerfile").write_text(
        render_broker_dockerfile(
            base=base,
            solution=solution,
            modelwire_version=__version__,
            base_digest=base_image.id if base_image else "",
        )
    )
    (dest / "blueprint.yaml").write_text(blueprint_text)
    (dest / "blueprint.yaml").chmod(0o644)
    write_wheelhouse(dest, target, None, progress)
    (dest / ".dockerignore").write_text("**/__pycache__\n")
    return dest

"""Docker images of bundles (and of a solution's broker), built with the Docker SDK.

This module talks to the engine: it builds a context written by
`modelwire.containers.context` (Dockerfile, wheelhouse, bundle) with no network at all
(`network_mode="none"`), streaming the build's steps, after probing the base image
(`modelwire.containers.base_image`: its Python minor version must equal the bundle's,
checked before anything is downloaded or built). `ensure_image` is what `run --docker`
uses: an image per exact bundle, tagged with its digest, built once.

The names of those two modules are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelwire import __version__
from modelwire.bundle import Bundle
from modelwire.codegen.conventions import LABEL_DIGEST, LABEL_RUNTIME, OCI_BASE_DIGEST
from modelwire.containers.base_image import DEFAULT_BASE, BaseImage, check_python, inspect_base
from modelwire.containers.context import spec_for, write_broker_context, write_context
from modelwire.errors import ToolError

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_PREFIX",
    "BaseImage",
    "BuildResult",
    "ImageRef",
    "build_broker_image",
    "build_context",
    "build_image",
    "check_python",
    "default_tag",
    "digest_tag",
    "docker_client",
    "ensure_image",
    "inspect_base",
    "spec_for",
    "write_broker_context",
    "write_context",
]

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "modelwire"
Progress = Callable[[str], None]

_STEP_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")


def _quiet(line: str) -> None:
    pass


def default_tag(name: str, version: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The image `modelwire build` makes unless told otherwise: `modelwire/iris:1.0.0`."""
    return f"{prefix}/{name}:{version}"


def digest_tag(name: str, version: str, digest: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The image of one exact bundle, `modelwire/iris:1.0.0-387fc4a3cec6`: what `run
    --docker` builds once and reuses while the bundle is unchanged."""
    return f"{prefix}/{name}:{version}-{digest[:12]}"


def docker_client() -> Any:
    """A Docker SDK client for the local engine (ToolError if none answers)."""
    try:
        import docker
    except ImportError as exc:
        raise ToolError(
            "working with images needs the Docker SDK; install 'modelwire[docker]'"
        ) from exc
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://") and not os.path.exists(host[len("unix://") :]):
        # the SDK would try it, and leave the failed socket open for the GC to warn about
        raise ToolError(
            f"no Docker engine answers (no socket at {host[len('unix://') :]}); "
            "start dockerd (scripts/docker-setup.sh does)"
        )
    client = None
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        if client is not None:
            client.close()  # its socket, opened for the ping that failed
        raise ToolError(
            f"no Docker engine answers ({exc}); start dockerd (scripts/docker-setup.sh does)"
        ) from None
    return client


@contextmanager
def _engine(client: Any = None) -> Iterator[Any]:
    """The client given, or a new one closed afterwards (no socket left to the GC)."""
    if client is not None:
        yield client
        return
    own = docker_client()
    try:
        yield own
    finally:
        own.close()


# ---------------------------------------------------------------- builds


@dataclass(frozen=True)
class BuildResult:
    """A finished build: the image, and how many of its steps came from the cache.

    `step_images` are the images of every step (both stages), in order: the
    builder's cache for this context.
    """

    tag: str
    image_id: str
    cached_steps: int
    steps: int
    step_images: tuple[str, ...] = ()


def build_context(
    ctx: Path,
    tag: str,
    *,
    progress: Progress = _quiet,
    nocache: bool = False,
    client: Any = None,
) -> BuildResult:
    """Build an image from a context directory written by this module.

    The build has no network (`network_mode="none"`): everything it installs is in
    the context.

    Raises:
        ToolError: the build failed (the message has the failing step's last output).
    """
    with _engine(client) as engine:
        progress(f"building {tag} from {ctx}")
        lines = engine.api.build(
            path=str(ctx),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            network_mode="none",
            nocache=nocache,
            pull=False,
        )
        image_id, steps, cached, step_images = _stream(lines, progress)
        if image_id is None:
            image_id = engine.images.get(tag).id
    return BuildResult(tag, str(image_id), cached, steps, tuple(step_images))


def _stream(
    lines: Iterator[dict[str, Any]], progress: Progress
) -> tuple[str | None, int, int, list[str]]:
    image_id = None
    steps = cached = 0
    tail: list[str] = []
    step_images: list[str] = []
    error = None
    for chunk in lines:  # read to the end even after an error: the response is closed then
        if "error" in chunk:
            error = ToolError(
                "docker build failed: " + str(chunk["error"]).strip(),
                stderr_tail="".join(tail[-20:]).rstrip(),
            )
        text = chunk.get("stream")
        if text:
            tail.append(text)
            del tail[:-40]
            for raw in text.splitlines():
                line = raw.rstrip()
                found = _STEP_IMAGE.match(line)
                if line.startswith("Step "):
                    steps += 1
                    progress(line)
                elif "Using cache" in line:
                    cached += 1
                elif found:
                    step_images.append(found.group(1))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            image_id = aux["ID"]
    if error is not None:
        raise error
    return image_id, steps, cached, step_images


def build_image(
    bundle_path: str | os.PathLike[str] | Bundle,
    tag: str,
    *,
    base: str = DEFAULT_BASE,
    progress: Progress = _quiet,
    context_dir: Path | None = None,
    nocache: bool = False,
) -> BuildResult:
    """Build (or rebuild, reusing cached layers) the image of a bundle.

    Raises:
        ConfigError: the base image is missing, or its Python minor version differs
            from the bundle's (checked before anything is downloaded or built).
        ToolError: Docker is not reachable, pip or the build failed.
        BundleError: the bundle is invalid.
    """
    bundle = bundle_path if isinstance(bundle_path, Bundle) else Bundle(bundle_path)
    with _engine() as client, _context(context_dir) as ctx:
        base_image = inspect_base(client, base, progress=progress)
        check_python(base_image, bundle)
        write_context(bundle, ctx, base=base, base_image=base_image, progress=progress)
        return build_context(ctx, tag, progress=progress, nocache=nocache, client=client)


def build_broker_image(
    blueprint_text: str,
    solution: str,
    tag: str,
    *,
    base: str = DEFAULT_BASE,
    progress: Progress = _quiet,
    context_dir: Path | None = None,
) -> BuildResult:
    """Build the image of a solution's broker (see `write_broker_context`)."""
    with _engine() as client, _context(context_dir) as ctx:
        base_image = inspect_base(client, base, progress=progress)
        write_broker_context(
            blueprint_text, solution, ctx, base=base, base_image=base_image, progress=progress
        )
        return build_context(ctx, tag, progress=progress, client=client)


@contextmanager
def _context(given: Path | None) -> Iterator[Path]:
    """A context directory: the one given, or a temporary one removed afterwards."""
    path = given or Path(tempfile.mkdtemp(prefix="modelwire-build-"))
    try:
        yield path
    finally:
        if given is None:
            shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class ImageRef:
    tag: str
    image_id: str
    built: bool  # False: an image of this exact bundle was already there


def ensure_image(
    bundle_path: str | os.PathLike[str],
    *,
    base: str = DEFAULT_BASE,
    prefix: str = DEFAULT_PREFIX,
    progress: Progress = _quiet,
    client: Any = None,
) -> ImageRef:
    """The image of this exact bundle, built only if it is not here yet.

    It is tagged `digest_tag(...)` and reused while its labels say it holds this
    bundle, this modelwire version and this base image.
    """
    import docker.errors

    bundle = Bundle(bundle_path)
    m = bundle.manifest
    with _engine(client) as engine:
        base_image = inspect_base(engine, base, progress=progress)
        check_python(base_image, bundle)
        tag = digest_tag(m.name, m.version, bundle.digest(), prefix)
        try:
            image = engine.images.get(tag)
        except docker.errors.ImageNotFound:
            image = None
        want = {
            LABEL_DIGEST: f"sha256:{bundle.digest()}",
            LABEL_RUNTIME: __version__,
            OCI_BASE_DIGEST: base_image.id,
        }
        if image is not None and all((image.labels or {}).get(k) == v for k, v in want.items()):
            progress(f"reusing {tag}")
            return ImageRef(tag, image.id, built=False)
        with _context(None) as ctx:
            write_context(bundle, ctx, base=base, base_image=base_image, progress=progress)
            result = build_context(ctx, tag, progress=progress, client=engine)
    return ImageRef(tag, result.image_id, built=True)

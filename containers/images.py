"""Docker images of bundles (and of a solution's broker), built with the Docker SDK.

The build context holds the Dockerfile (`modelwire.codegen.dockerfile`), a
wheelhouse prepared on the host with pip (`modelwire.containers.wheelhouse`), and the
bundle; the image build runs with no network at all (`network_mode="none"`).

The base image is probed once per image id (its Python minor version, libc and
machine), so the wheels fit the image rather than this machine. Its Python minor
version must equal the bundle's (pickled code loads only there): that is checked
before anything is downloaded or built. `ensure_image` is what `run --docker`
uses: an image per exact bundle, tagged with its digest, built once.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelwire import __version__
from modelwire.bundle import Bundle
from modelwire.bundle.writer import write_dir
from modelwire.codegen.conventions import LABEL_DIGEST, LABEL_RUNTIME, OCI_BASE_DIGEST
from modelwire.codegen.dockerfile import (
    DockerfileSpec,
    render_broker_dockerfile,
    render_dockerfile,
)
from modelwire.containers.wheelhouse import Target, cache_root, platforms, write_wheelhouse
from modelwire.errors import ConfigError, ToolError

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

DEFAULT_BASE = "python:3.11-slim"
DEFAULT_PREFIX = "modelwire"
Progress = Callable[[str], None]

# what the base image's python3 prints: "3.11 x86_64 glibc 2.36" ("3.11 x86_64" on musl)
_PROBE = (
    "import platform, sys; "
    "print('%d.%d' % sys.version_info[:2], platform.machine(), *platform.libc_ver())"
)
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
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
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


# ---------------------------------------------------------------- the base image


@dataclass(frozen=True)
class BaseImage:
    """What a base image offers, as its own python3 reports it."""

    name: str
    id: str  # sha256:...
    python: str  # "3.11"
    machine: str  # "x86_64", "aarch64"
    libc: str = ""  # "glibc", or "" (musl or unknown)
    libc_version: str = ""  # "2.36"

    @property
    def target(self) -> Target:
        """What its wheels must fit."""
        return Target(self.python, platforms(self.machine, self.libc, self.libc_version))


def inspect_base(client: Any, base: str, *, progress: Progress = _quiet) -> BaseImage:
    """The base image, pulled if it is not here yet, and probed (once per image id).

    Raises:
        ConfigError: the image is not here and cannot be pulled, or has no working python3.
    """
    import docker.errors

    try:
        image = client.images.get(base)
    except docker.errors.ImageNotFound:
        progress(f"pulling {base}")
        try:
            image = client.images.pull(base)
        except docker.errors.APIError as exc:
            raise ConfigError(
                "base",
                base,
                f"no such image here, and it cannot be pulled ({exc.explanation or exc}); "
                "create it (scripts/docker-setup.sh makes python:3.11-slim) or choose "
                "another with --base",
            ) from None
    cached = cache_root() / "bases" / f"{image.id.replace(':', '-')}.json"
    try:
        words = json.loads(cached.read_text())
    except (OSError, ValueError):
        words = _probe(client, image.id, base)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(words))
    libc = words[2:4] if len(words) >= 4 else ["", ""]
    return BaseImage(base, image.id, words[0], words[1], libc[0], libc[1])


def _probe(client: Any, image_id: str, base: str) -> list[str]:
    import docker.errors

    try:
        out = client.containers.run(
            image_id, ["-c", _PROBE], entrypoint=["python3"], network_disabled=True, remove=True
        )
    except docker.errors.DockerException as exc:
        raise ConfigError(
            "base", base, f"cannot run python3 in it ({exc}); use an image with Python"
        ) from None
    text: str = out.decode(errors="replace")
    words = text.split()
    if len(words) < 2 or not re.fullmatch(r"\d+\.\d+", words[0]):
        raise ConfigError("base", base, f"its python3 reports {text!r}, not a version")
    return words


def check_python(base: BaseImage, bundle: Bundle) -> None:
    """ConfigError unless the base image runs the bundle's Python minor version."""
    want = bundle.manifest.python
    if base.python != want:
        raise ConfigError(
            "base",
            base.name,
            f"has Python {base.python}, but bundle {bundle.path} was dumped with Python "
            f"{want} and its pickled code loads only there; choose a base image with "
            f"Python {want} (--base)",
        )


# ---------------------------------------------------------------- build contexts


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

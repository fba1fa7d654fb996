"""Docker images of bundles (and of a solution's broker), built with the Docker SDK.

The build context holds the Dockerfile (`modelwire.codegen.dockerfile`), a
wheelhouse prepared on the host with pip (modelwire's runtime and the model's
requirements, at the versions installed here), and the bundle; so the image
build itself needs no network. Wheelhouses are cached per set of pins under
~/.cache/modelwire/wheels. The base image's Python minor version is checked
against the bundle's before anything is built.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelwire import __version__
from modelwire.bundle import Bundle
from modelwire.codegen.dockerfile import DockerfileSpec, render_dockerfile
from modelwire.errors import BundleError, ConfigError, ToolError

__all__ = [
    "DEFAULT_BASE",
    "BuildResult",
    "build_context",
    "build_image",
    "docker_client",
    "write_broker_context",
    "write_context",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE = "python:3.11-slim"
# modelwire's own run-time dependencies, pinned to what is installed here
_RUNTIME_DISTS = (
    "grpcio",
    "grpcio-health-checking",
    "grpcio-reflection",
    "protobuf",
    "cloudpickle",
    "numpy",
    "click",
    "pyyaml",
    "networkx",
)


def docker_client() -> Any:
    """A Docker SDK client for the local engine (ToolError if none answers)."""
    try:
        import docker
    except ImportError as exc:
        raise ToolError(
            "building images needs the Docker SDK; install 'modelwire[docker]'"
        ) from exc
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise ToolError(f"no Docker engine answers ({exc}); start dockerd") from None
    return client


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelwire" / "wheels"


def _project_root() -> Path | None:
    """The source tree modelwire runs from, if it is one (a development install)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file() and 'name = "modelwire"' in pyproject.read_text():
            return parent
    return None


def _pip(args: list[str], what: str) -> None:
    argv = [sys.executable, "-m", "pip", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise ToolError(
            f"pip could not {what}", argv=argv, returncode=proc.returncode, stderr_tail=tail
        )


def _runtime_wheels(progress: Callable[[str], None]) -> Path:
    """modelwire's wheel and its dependencies' wheels, at the versions installed here."""
    pins = []
    for dist in _RUNTIME_DISTS:
        try:
            pins.append(f"{dist}=={md.version(dist)}")
        except md.PackageNotFoundError:
            continue
    root = _project_root()
    key = hashlib.sha256("\n".join([__version__, sys.version, *pins]).encode())
    if root is not None:  # a source tree: the wheel changes with the code
        key.update((root / "pyproject.toml").read_bytes())
        for package in ("core", "codegen", "runtime", "catalog", "broker"):
            for p in sorted((root / package).rglob("*")):
                if p.is_file() and "__pycache__" not in p.parts:
                    key.update(str(p.relative_to(root)).encode() + p.read_bytes())
    dest = _cache_dir() / f"runtime-{key.hexdigest()[:16]}"
    if (dest / ".complete").is_file():
        return dest
    _cache_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".runtime-", dir=_cache_dir()))
    try:
        if root is not None:
            progress(f"building the modelwire {__version__} wheel from {root}")
            _pip(
                ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp), str(root)],
                "build modelwire's wheel",
            )
        else:
            pins.append(f"modelwire=={__version__}")
        progress(f"downloading {len(pins)} runtime wheels ({', '.join(pins)})")
        _pip(
            ["download", "-q", "--only-binary=:all:", "-d", str(tmp), *pins],
            "download modelwire's runtime wheels",
        )
        (tmp / ".complete").write_text("\n".join(pins) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _model_wheels(requirements: list[str], progress: Callable[[str], None]) -> Path:
    key = hashlib.sha256("\n".join([sys.version, *sorted(requirements)]).encode()).hexdigest()
    dest = _cache_dir() / f"model-{key[:16]}"
    if (dest / ".complete").is_file():
        return dest
    _cache_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=_cache_dir()))
    try:
        if requirements:
            progress(f"downloading wheels for {', '.join(requirements)}")
            _pip(
                ["download", "-q", "--only-binary=:all:", "-d", str(tmp), *requirements],
                "download the model's requirements",
            )
        (tmp / ".complete").write_text("\n".join(requirements) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def spec_for(bundle: Bundle, base: str) -> DockerfileSpec:
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
    )


def write_context(
    bundle_path: str | os.PathLike[str],
    dest: Path,
    *,
    base: str = DEFAULT_BASE,
    progress: Callable[[str], None] = lambda s: None,
) -> Path:
    """Write a complete build context (Dockerfile, wheels, bundle) into `dest`."""
    bundle = Bundle(bundle_path)
    m = bundle.manifest
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Dockerfile").write_text(render_dockerfile(spec_for(bundle, base)))
    (dest / "requirements.txt").write_text("".join(r + "\n" for r in m.requirements))
    _link_wheels(_runtime_wheels(progress), dest / "wheels" / "runtime")
    _link_wheels(_model_wheels(list(m.requirements), progress), dest / "wheels" / "model")
    bundle_dir = dest / "bundle"
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    for rel, data in bundle.files().items():
        p = bundle_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (dest / ".dockerignore").write_text("**/__pycache__\n")
    return dest


def _link_wheels(src: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for whl in src.glob("*.whl"):
        try:
            os.link(whl, target / whl.name)  # hard links: no copy of big wheels
        except OSError:
            shutil.copy2(whl, target / whl.name)


def write_broker_context(
    blueprint_text: str,
    solution: str,
    dest: Path,
    *,
    base: str = DEFAULT_BASE,
    progress: Callable[[str], None] = lambda s: None,
) -> Path:
    """A build context for a solution's broker image: modelwire and the blueprint."""
    from modelwire.codegen.dockerfile import render_broker_dockerfile

    dest.mkdir(parents=True, exist_ok=True)
    (dest / "Dockerfile").write_text(
        render_broker_dockerfile(base=base, solution=solution, modelwire_version=__version__)
    )
    (dest / "blueprint.yaml").write_text(blueprint_text)
    _link_wheels(_runtime_wheels(progress), dest / "wheels" / "runtime")
    return dest


def build_context(
    ctx: Path, tag: str, *, progress: Callable[[str], None] = lambda s: None
) -> BuildResult:
    """Build an image from a context directory written by this module."""
    client = docker_client()
    progress(f"building {tag} from {ctx}")
    lines = client.api.build(path=str(ctx), tag=tag, rm=True, forcerm=True, decode=True)
    image_id, steps, cached, _ = _stream(lines, progress)
    if image_id is None:
        image_id = client.images.get(tag).id
    return BuildResult(tag, str(image_id), cached, steps)


def _python_of(client: Any, base: str) -> str:
    try:
        out = client.containers.run(
            base,
            ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            remove=True,
            entrypoint=[],
        )
    except Exception as exc:
        raise ConfigError("base", base, f"cannot run python3 in the base image ({exc})") from None
    return str(out.decode().strip())


@dataclass(frozen=True)
class BuildResult:
    tag: str
    image_id: str
    cached_steps: int
    steps: int


def _stream(
    lines: Iterator[dict[str, Any]], progress: Callable[[str], None]
) -> tuple[str | None, int, int, list[str]]:
    image_id = None
    steps = cached = 0
    tail: list[str] = []
    for chunk in lines:
        if "error" in chunk:
            raise ToolError(
                "docker build failed: " + str(chunk["error"]).strip(),
                stderr_tail="".join(tail[-20:]),
            )
        text = chunk.get("stream")
        if text:
            tail.append(text)
            for raw in text.splitlines():
                line = raw.rstrip()
                if line.startswith("Step "):
                    steps += 1
                    progress(line)
                elif "Using cache" in line:
                    cached += 1
        aux = chunk.get("aux")
        if isinstance(aux, dict) and "ID" in aux:
            image_id = aux["ID"]
    return image_id, steps, cached, tail


def build_image(
    bundle_path: str | os.PathLike[str],
    tag: str,
    *,
    base: str = DEFAULT_BASE,
    progress: Callable[[str], None] = lambda s: None,
    context_dir: Path | None = None,
) -> BuildResult:
    """Build (or rebuild, reusing cached layers) the image of a bundle.

    Raises:
        ConfigError: the base image's Python minor version differs from the bundle's.
        ToolError: Docker is not reachable, pip or the build failed.
        BundleError: the bundle is invalid.
    """
    bundle = Bundle(bundle_path)
    client = docker_client()
    try:
        client.images.get(base)
    except Exception:
        raise ConfigError(
            "base",
            base,
            "no such image here (no registry is reachable: create it, e.g. with "
            "scripts/docker-setup.sh, or pass --base)",
        ) from None
    py = _python_of(client, base)
    if py != bundle.manifest.python:
        raise BundleError(
            f"it was dumped with Python {bundle.manifest.python}, and base image {base} has "
            f"Python {py}; choose a base with Python {bundle.manifest.python} (--base)",
            bundle=bundle.path,
        )
    own = context_dir is None
    ctx = context_dir or Path(tempfile.mkdtemp(prefix="modelwire-build-"))
    try:
        write_context(bundle_path, ctx, base=base, progress=progress)
        return build_context(ctx, tag, progress=progress)
    finally:
        if own:
            shutil.rmtree(ctx, ignore_errors=True)

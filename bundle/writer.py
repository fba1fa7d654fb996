"""Writing bundles: a model's files, in a directory or a deterministic zip.

`build_files()` pickles the model, infers its requirements, records its examples'
answers (`modelwire.bundle.examples`) and renders its proto and manifest;
`write_dir()` and `write_zip()` put the files in place atomically; `dump()` does both.
While `modelwire dump` runs a model file (`running_script()`), the file's own `dump()`
calls write nothing: the command writes only its `-o`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from types import FrameType
from typing import Any

from modelwire.bundle._pickling import ModelPickler
from modelwire.bundle.examples import record_examples
from modelwire.bundle.manifest import (
    CODE_DIR,
    MANIFEST,
    PICKLE,
    PROTO,
    REQUIREMENTS,
    render_manifest,
)
from modelwire.bundle.model import Model
from modelwire.bundle.requirements import Requirements, module_imports, normalize, resolve_modules
from modelwire.codegen.naming import package_name
from modelwire.codegen.proto import render_proto
from modelwire.errors import BundleError, os_reason

__all__ = [
    "build_files",
    "dump",
    "is_bundle_zip",
    "running_script",
    "script_running",
    "write_dir",
    "write_zip",
]

# the logger these lines had before bundle.py was split; log filters may name it
logger = logging.getLogger("modelwire.bundle")

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# the model file `modelwire dump FILE.py:ATTR` is running right now, if any
_SCRIPT: ContextVar[Path | None] = ContextVar("modelwire_dump_script", default=None)


@contextlib.contextmanager
def running_script(script: Path) -> Iterator[None]:
    """While `modelwire dump` runs the model file `script`: its own `dump()` calls write nothing.

    A model file often ends with its own `dump(model, "iris", "build/iris")`. Run by
    `modelwire dump FILE.py:ATTR -o OUT`, that call would write a second bundle
    somewhere the command never named, before ATTR is even known to be a Model.
    """
    token = _SCRIPT.set(script)
    try:
        yield
    finally:
        _SCRIPT.reset(token)


def script_running() -> Path | None:
    """The model file `modelwire dump` is running in this context, or None."""
    return _SCRIPT.get()


def _script_line(script: Path) -> str:
    """`FILE, line N` of the innermost frame of `script` on the stack (the call in it)."""
    frame: FrameType | None = sys._getframe(1)
    resolved = script.resolve()
    while frame is not None:
        if Path(frame.f_code.co_filename).resolve() == resolved:
            return f"{script}, line {frame.f_lineno}"
        frame = frame.f_back
    return str(script)


def _source_imports(fn: Callable[..., Any]) -> tuple[set[str], set[str]]:
    """Imports written inside a method's body (not reached by pickling), as `module_imports`."""
    import inspect

    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return set(), set()
    import textwrap

    module = getattr(fn, "__module__", None)
    return module_imports(textwrap.dedent(source), module if isinstance(module, str) else None)


def _merge_requirements(inferred: Requirements, extra: Sequence[str] | None) -> list[str]:
    pins = dict(inferred.pins)
    for raw in extra or ():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key = normalize(_req_name(line))
        pins[key] = line
    return [pins[k] for k in sorted(pins)]


def _req_name(line: str) -> str:
    import re

    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    if not m:
        raise ValueError(f"not a requirement: {line!r}")
    return m.group(1)


def build_files(
    model: Model,
    name: str,
    *,
    version: str = "1.0.0",
    description: str | None = None,
    tags: Sequence[str] = (),
    requirements: Sequence[str] | None = None,
    examples: Mapping[str, Sequence[Any]] | None = None,
) -> dict[str, bytes]:
    """The bundle's files as {path: bytes}, `modelwire.json` included (see `dump`)."""
    if not isinstance(model, Model):
        raise TypeError(f"dump() expects a modelwire.Model, got {type(model).__name__}")
    try:
        package_name(name, version)
    except ValueError as exc:
        raise ValueError(f"invalid model name or version: {exc}") from None
    schema, binding = model.named(name, version)
    # the examples run first: a model that fails on them is not worth pickling
    example_files, example_entries = (
        record_examples(model.methods, schema, binding, examples) if examples else ({}, {})
    )
    pickler = ModelPickler()
    pkl = pickler.dumps(model)
    modules = set(pickler.modules)
    maybe: set[str] = set()
    for fn in model.methods.values():
        found, candidates = _source_imports(fn)
        modules |= found
        maybe |= candidates
    inferred = resolve_modules(modules, maybe)
    if inferred.unresolved:
        logger.warning(
            "could not tell which distribution provides %s; "
            "pass requirements=[...] if the model needs them",
            ", ".join(sorted(inferred.unresolved)),
        )
    reqs = _merge_requirements(inferred, requirements)
    files: dict[str, bytes] = {
        PROTO: render_proto(schema, version=version).encode(),
        PICKLE: pkl,
        REQUIREMENTS: ("".join(r + "\n" for r in reqs)).encode(),
    }
    for local in inferred.local.values():
        for rel, path in local.files():
            files[f"{CODE_DIR}/{rel}"] = path.read_bytes()
    files.update(example_files)
    files[MANIFEST] = render_manifest(
        name,
        version,
        schema,
        description=description,
        tags=tags,
        requirements=reqs,
        files=files,
        examples=example_entries,
    )
    return files


def is_bundle_zip(path: Path) -> bool:
    """Whether `path` is a zip with a bundle manifest in it (so it may be overwritten)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return MANIFEST in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def write_zip(files: Mapping[str, bytes], dest: Path) -> None:
    """A deterministic zip: sorted entries, fixed timestamps and permissions."""
    if dest.exists() and not (dest.is_file() and is_bundle_zip(dest)):
        raise BundleError(
            "the path exists and is not a bundle zip; refusing to overwrite it "
            "(choose another path or remove it)",
            bundle=dest,
        )
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for rel in sorted(files):
                info = zipfile.ZipInfo(rel, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                info.create_system = 3
                zf.writestr(info, files[rel], compresslevel=6)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_dir(files: Mapping[str, bytes], dest: Path) -> None:
    """Write the bundle directory atomically: a sibling temp dir, then a rename."""
    if dest.exists() and not dest.is_dir():
        raise BundleError(
            "a file exists at this path; refusing to overwrite it "
            "(choose another path, or end it in .zip for the single-file form)",
            bundle=dest,
        )
    if dest.exists() and not (dest / MANIFEST).is_file() and any(dest.iterdir()):
        raise BundleError(
            "the directory exists and is not a bundle; refusing to overwrite it "
            "(choose another path or remove it)",
            bundle=dest,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)
    try:
        for rel, data in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _os_reason(exc: OSError, dest: Path) -> str:
    """The OS's reason, without the name of the temp file the bundle is first written to."""
    return os_reason(exc, hide=lambda name: Path(name).name.startswith(f".{dest.name}."))


def dump(
    model: Model,
    name: str,
    path: str | os.PathLike[str],
    *,
    version: str = "1.0.0",
    description: str | None = None,
    tags: Sequence[str] = (),
    requirements: Sequence[str] | None = None,
    examples: Mapping[str, Sequence[Any]] | None = None,
) -> Path:
    """Write a model as a bundle.

    Args:
        model: the model to package.
        name: the model's name; it also names the proto package
            (``iris`` -> ``modelwire.models.iris.v1``).
        path: a directory to create (or replace, if it holds a bundle), or a
            path ending in ``.zip`` for the single-file form.
        version: the model version; its major number picks the proto package.
        description: a free-text description, kept in the manifest.
        tags: free-form tags, kept in the manifest.
        requirements: requirement lines added to (or overriding, by name) the
            inferred ones, e.g. ``["scikit-learn>=1.3"]``.
        examples: example requests by method: for each, the argument of a
            one-parameter method, a dict of keyword arguments for a method of several,
            or a `modelwire.bundle.examples.JsonRequest`. The model is called on each
            now, and the requests and its answers are stored in the bundle, for
            `modelwire validate` to replay where the bundle is installed.

    Returns:
        The bundle's path.

    While `modelwire dump` runs the model file that makes this call, nothing is
    written (a warning says so): the command writes only its own `-o`.

    Raises:
        BundleError: `path` exists and is not a bundle, or cannot be written.
        ModelwireError: the model raised on an example, or answered it with a value
            its response type cannot hold.
        TypeError, ValueError: an example that does not fit its method's request, or
            examples of a method the model does not have.

    Example:
        >>> dump(Model(classify=classify), "iris", "build/iris",
        ...      examples={"classify": [IrisInput([5.1], [3.5], [1.4], [0.2])]})  # doctest: +SKIP
    """
    script = script_running()
    if script is not None:
        logger.warning(
            "%s: skipped the file's own dump to %s (modelwire dump writes only its -o)",
            _script_line(script),
            path,
        )
        return Path(path)
    files = build_files(
        model,
        name,
        version=version,
        description=description,
        tags=tags,
        requirements=requirements,
        examples=examples,
    )
    dest = Path(path)
    try:
        if dest.suffix == ".zip":
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_zip(files, dest)
        else:
            write_dir(files, dest)
    except OSError as exc:
        raise BundleError(f"cannot write it ({_os_reason(exc, dest)})", bundle=dest) from exc
    logger.info("dumped model %s %s to %s", name, version, dest)
    return dest

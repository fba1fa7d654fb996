"""The bundle: what `dump` writes, the catalog stores and the runtime serves.

A bundle is a directory, or the same content as one deterministic `.zip`:

    modelwire.json     manifest: format, name, version, methods, schema, Python
                       version, requirements, sha256 of every other file
    model.proto        the service's contract (proto3)
    model.pkl          the Model, pickled with cloudpickle
    requirements.txt   pinned requirements, inferred while pickling
    code/              source of the contributor's own modules the model needs

Loading checks the format, every digest and the Python minor version before it
unpickles anything, and says what is wrong and what to do.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelwire import __version__
from modelwire.codegen.annotations import Binding
from modelwire.codegen.proto import render_proto
from modelwire.codegen.schema import ModelSchema, package_name
from modelwire.errors import BundleError, BundleNotFound, SchemaError
from modelwire.modeling import Model
from modelwire.requirements import Requirements, module_imports, normalize, resolve_modules

__all__ = ["FORMAT_VERSION", "Bundle", "LoadedModel", "Manifest", "dump", "load", "read_manifest"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "modelwire.json"
PROTO = "model.proto"
PICKLE = "model.pkl"
REQUIREMENTS = "requirements.txt"
CODE_DIR = "code"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_PY = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Manifest:
    """The parsed `modelwire.json`."""

    name: str
    version: str
    description: str | None
    tags: tuple[str, ...]
    python: str
    modelwire: str
    requirements: tuple[str, ...]
    files: Mapping[str, str]
    schema: ModelSchema
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, data: bytes, bundle: str | Path) -> Manifest:
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise BundleError(
                f"{MANIFEST} is not valid JSON ({exc}); dump the model again", bundle=bundle
            ) from exc
        if not isinstance(raw, dict):
            raise BundleError(f"{MANIFEST} must hold a JSON object", bundle=bundle)
        fmt = raw.get("format")
        if fmt != FORMAT_VERSION:
            newer = isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT_VERSION
            raise BundleError(
                f"{MANIFEST} has format {fmt!r}; this modelwire {__version__} reads format "
                f"{FORMAT_VERSION}; "
                + ("upgrade modelwire to load it" if newer else "dump the model again"),
                bundle=bundle,
            )
        try:
            return cls(
                name=raw["name"],
                version=raw["version"],
                description=raw.get("description"),
                tags=tuple(raw.get("tags") or ()),
                python=raw["python"],
                modelwire=raw.get("modelwire", ""),
                requirements=tuple(raw.get("requirements") or ()),
                files=dict(raw["files"]),
                schema=ModelSchema.from_json(raw["schema"]),
                raw=raw,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"{MANIFEST} is missing or has a malformed entry ({exc!r})", bundle=bundle
            ) from exc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- pickling


class _Pickler:
    """cloudpickle, noting the module of every object it reaches, in a reproducible order.

    The C pickler writes a set in iteration order, which for strings depends on
    the hash seed, so two processes would write different bytes for the same
    model. When the model holds a set (a global like ``STOP = {"a", "the"}``, or
    the frozenset constant Python compiles ``w in {"a", "the"}`` into), it is
    pickled again with the pure-Python pickler, which writes sets sorted.
    """

    def __init__(self) -> None:
        import cloudpickle

        seen: set[str] = set()
        self.modules = seen
        base = cloudpickle.Pickler

        class Recording(base):  # type: ignore[misc, valid-type]
            met_set = False

            def reducer_override(self, obj: Any) -> Any:
                if isinstance(obj, type(sys)):
                    seen.add(obj.__name__)
                else:
                    mod = getattr(obj, "__module__", None)
                    if isinstance(mod, str):
                        seen.add(mod)
                    seen.add(type(obj).__module__)
                    if isinstance(obj, type):
                        _pin_tracker_id(obj)
                return super().reducer_override(obj)

            # called for every object, sets included (reducer_override is not)
            def persistent_id(self, obj: Any) -> None:
                if type(obj) in (set, frozenset) and len(obj) > 1:
                    self.met_set = True

        self._cls = Recording

    def dumps(self, obj: Any) -> bytes:
        buf = io.BytesIO()
        pickler = self._cls(buf, protocol=5)
        pickler.dump(obj)
        if not pickler.met_set:
            return buf.getvalue()
        ordered = io.BytesIO()
        try:
            _OrderedPickler(ordered).dump(obj)
        except Exception as exc:  # the C pickler's output is as good, only not reproducible
            logger.warning("the bundle will not be byte-reproducible: %r", exc)
            return buf.getvalue()
        return ordered.getvalue()


def _sorted_items(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda x: (type(x).__module__, type(x).__qualname__, repr(x)))


# typeshed describes little of the pure-Python pickler this class builds on
_PurePickler: Any = pickle._Pickler


class _OrderedPickler(_PurePickler):  # type: ignore[misc]
    """The pure-Python pickler with cloudpickle's reducers; sets are written sorted."""

    dispatch = _PurePickler.dispatch.copy()

    def __init__(self, file: io.BytesIO) -> None:
        import cloudpickle

        super().__init__(file, protocol=5)
        self.dispatch_table = cloudpickle.Pickler.dispatch_table
        # one cloudpickle pickler per dump: it maps shared function globals
        self._cloud = cloudpickle.Pickler(io.BytesIO(), protocol=5)

    def reducer_override(self, obj: Any) -> Any:
        return self._cloud.reducer_override(obj)

    def save_set(self, obj: set[Any]) -> None:  # protocol 4+, as pickle._Pickler.save_set
        self.write(pickle.EMPTY_SET)
        self.memoize(obj)
        items = _sorted_items(obj)
        for start in range(0, len(items), 1000):
            self.write(pickle.MARK)
            for item in items[start : start + 1000]:
                self.save(item)
            self.write(pickle.ADDITEMS)

    def save_frozenset(self, obj: frozenset[Any]) -> None:  # as pickle._Pickler.save_frozenset
        self.write(pickle.MARK)
        for item in _sorted_items(obj):
            self.save(item)
        if id(obj) in self.memo:
            self.write(pickle.POP_MARK + self.get(self.memo[id(obj)][0]))
            return
        self.write(pickle.FROZENSET)
        self.memoize(obj)

    dispatch[set] = save_set
    dispatch[frozenset] = save_frozenset


def _pin_tracker_id(cls: type) -> None:
    """Give a class pickled by value a tracker id derived from its definition.

    cloudpickle tags such classes with a random uuid4, which would make two dumps
    of the same model differ; an id from the class's module, name and attribute
    names is stable across processes.
    """
    import cloudpickle.cloudpickle as cp

    by_class = getattr(cp, "_DYNAMIC_CLASS_TRACKER_BY_CLASS", None)
    by_id = getattr(cp, "_DYNAMIC_CLASS_TRACKER_BY_ID", None)
    lock = getattr(cp, "_DYNAMIC_CLASS_TRACKER_LOCK", None)
    if by_class is None or by_id is None or lock is None:
        return
    if getattr(cp, "_should_pickle_by_reference", lambda c: True)(cls):
        return
    ident = repr((cls.__module__, cls.__qualname__, sorted(vars(cls))))
    tracker = hashlib.sha256(ident.encode()).hexdigest()[:32]
    with lock:
        if cls in by_class:
            return
        if by_id.get(tracker) is not None:
            return
        by_class[cls] = tracker
        by_id[tracker] = cls


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


# ---------------------------------------------------------------- dump


def _manifest(
    name: str,
    version: str,
    schema: ModelSchema,
    *,
    description: str | None,
    tags: Sequence[str],
    requirements: list[str],
    files: Mapping[str, bytes],
) -> bytes:
    methods = [
        {
            "name": m.name,
            "rpc": m.rpc,
            "request": m.request,
            "response": m.response,
            "doc": m.doc,
        }
        for m in schema.methods
    ]
    doc = {
        "format": FORMAT_VERSION,
        "name": name,
        "version": version,
        "description": description,
        "tags": list(tags),
        "python": _PY,
        "modelwire": __version__,
        "package": schema.package,
        "service": f"{schema.package}.{schema.service}",
        "methods": methods,
        "requirements": requirements,
        "schema": schema.to_json(),
        "files": {k: _sha256(v) for k, v in sorted(files.items())},
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


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
) -> dict[str, bytes]:
    """The bundle's files as {path: bytes}, `modelwire.json` included."""
    if not isinstance(model, Model):
        raise TypeError(f"dump() expects a modelwire.Model, got {type(model).__name__}")
    try:
        package_name(name, version)
    except ValueError as exc:
        raise ValueError(f"invalid model name or version: {exc}") from None
    schema, _ = model.named(name, version)
    pickler = _Pickler()
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
    files[MANIFEST] = _manifest(
        name, version, schema, description=description, tags=tags, requirements=reqs, files=files
    )
    return files


def _is_bundle_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return MANIFEST in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def write_zip(files: Mapping[str, bytes], dest: Path) -> None:
    """A deterministic zip: sorted entries, fixed timestamps and permissions."""
    if dest.exists() and not (dest.is_file() and _is_bundle_zip(dest)):
        raise BundleError(
            "the path exists and is not a bundle zip; refusing to overwrite it "
            "(choose another path or remove it)",
            bundle=dest,
        )
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    with zipfile.ZipFile(tmp, "w") as zf:
        for rel in sorted(files):
            info = zipfile.ZipInfo(rel, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, files[rel], compresslevel=6)
    os.replace(tmp, dest)


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


def dump(
    model: Model,
    name: str,
    path: str | os.PathLike[str],
    *,
    version: str = "1.0.0",
    description: str | None = None,
    tags: Sequence[str] = (),
    requirements: Sequence[str] | None = None,
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

    Returns:
        The bundle's path.

    Raises:
        BundleError: `path` exists and is not a bundle.

    Example:
        >>> dump(Model(classify=classify), "iris", "build/iris")  # doctest: +SKIP
    """
    files = build_files(
        model,
        name,
        version=version,
        description=description,
        tags=tags,
        requirements=requirements,
    )
    dest = Path(path)
    if dest.suffix == ".zip":
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_zip(files, dest)
    else:
        write_dir(files, dest)
    logger.info("dumped model %s %s to %s", name, version, dest)
    return dest


# ---------------------------------------------------------------- load


class Bundle:
    """Read access to a bundle directory or zip, with digests checked."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BundleNotFound("no such file or directory", bundle=self.path)
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_file():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as exc:
                raise BundleError(
                    "not a bundle: neither a directory nor a zip file", bundle=self.path
                ) from exc
            if MANIFEST not in self._zip.namelist():
                raise BundleError(
                    f"not a bundle: the zip holds no {MANIFEST} (write one with modelwire.dump)",
                    bundle=self.path,
                )
        elif not (self.path / MANIFEST).is_file():
            raise BundleError(
                f"not a bundle: {MANIFEST} is missing (write one with modelwire.dump)",
                bundle=self.path,
            )
        self.manifest = Manifest.parse(self._read(MANIFEST), self.path)
        self._verify()

    def _read(self, rel: str) -> bytes:
        try:
            if self._zip is not None:
                return self._zip.read(rel)
            return (self.path / rel).read_bytes()
        except (KeyError, FileNotFoundError) as exc:
            raise BundleError(
                f"file {rel} is missing; the bundle is incomplete, copy it again or dump the "
                "model again",
                bundle=self.path,
            ) from exc
        except (OSError, zipfile.BadZipFile) as exc:
            raise BundleError(f"file {rel} cannot be read ({exc})", bundle=self.path) from exc

    def _stored(self) -> list[str]:
        """Paths of the files the bundle holds, manifest included (bytecode caches skipped)."""
        if self._zip is not None:
            return [n for n in self._zip.namelist() if not n.endswith("/")]
        # importing code/ from a bundle directory writes __pycache__ into it
        return [
            p.relative_to(self.path).as_posix()
            for p in self.path.rglob("*")
            if p.is_file() and "__pycache__" not in p.relative_to(self.path).parts
        ]

    def _verify(self) -> None:
        for rel in self.manifest.files:
            parts = rel.split("/")
            if rel.startswith("/") or "\\" in rel or ".." in parts or rel == MANIFEST:
                raise BundleError(f"{MANIFEST} lists an invalid path {rel!r}", bundle=self.path)
        for rel, digest in sorted(self.manifest.files.items()):
            if digest != _sha256(self._read(rel)):
                raise BundleError(
                    f"file {rel} does not match its sha256 in {MANIFEST}; "
                    "the bundle was modified after it was written",
                    bundle=self.path,
                )
        for required in (PROTO, PICKLE):
            if required not in self.manifest.files:
                raise BundleError(f"{MANIFEST} does not list {required}", bundle=self.path)
        for rel in sorted(self._stored()):
            if rel != MANIFEST and rel not in self.manifest.files:
                raise BundleError(
                    f"file {rel} is not listed in {MANIFEST}; the bundle was modified after it "
                    "was written (remove the file or dump the model again)",
                    bundle=self.path,
                )

    def read(self, rel: str) -> bytes:
        """A file's bytes (only files the manifest lists, already verified)."""
        if rel not in self.manifest.files and rel != MANIFEST:
            raise BundleError(f"file {rel} is not part of the bundle", bundle=self.path)
        return self._read(rel)

    def code_files(self) -> Iterator[tuple[str, bytes]]:
        for rel in sorted(self.manifest.files):
            if rel.startswith(CODE_DIR + "/"):
                yield rel[len(CODE_DIR) + 1 :], self._read(rel)

    def digest(self) -> str:
        """sha256 of the manifest, which pins every other file: the bundle's identity."""
        return _sha256(self._read(MANIFEST))

    def files(self) -> dict[str, bytes]:
        out = {rel: self._read(rel) for rel in self.manifest.files}
        out[MANIFEST] = self._read(MANIFEST)
        return out


@dataclass
class LoadedModel:
    """A model loaded from a bundle; its methods are called in-process with Python values."""

    manifest: Manifest
    model: Model
    schema: ModelSchema
    binding: Binding
    path: Path

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def __getattr__(self, name: str) -> Callable[..., Any]:
        model = self.__dict__.get("model")
        if model is None:
            raise AttributeError(name)
        return getattr(model, name)  # type: ignore[no-any-return]

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self.model.methods]


def _code_root(bundle: Bundle) -> Path | None:
    """A directory holding the bundle's code/ files (the bundle's own, if unzipped)."""
    files = list(bundle.code_files())
    if not files:
        return None
    if bundle._zip is None:
        # absolute: a relative sys.path entry breaks imports made after a chdir
        return bundle.path.resolve() / CODE_DIR
    root = Path(tempfile.mkdtemp(prefix="modelwire-code-"))
    for rel, data in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def load(path: str | os.PathLike[str]) -> LoadedModel:
    """Load a bundle for in-process use.

    Example:
        >>> iris = load("build/iris")  # doctest: +SKIP
        >>> iris.classify(IrisInput([5.1], [3.5], [1.4], [0.2]))  # doctest: +SKIP

    Raises:
        BundleNotFound: nothing exists at `path`.
        BundleError: the bundle is malformed or tampered with, was dumped with
            another Python minor version, or needs modules that are missing here.
    """
    bundle = Bundle(path)
    m = bundle.manifest
    if m.python != _PY:
        raise BundleError(
            f"it was dumped with Python {m.python} and this is Python {_PY}; pickled code "
            f"only loads on the same minor version, so serve it with Python {m.python} "
            "(for example in its Docker image)",
            bundle=bundle.path,
        )
    code = _code_root(bundle)
    if code is not None and str(code) not in sys.path:
        sys.path.insert(0, str(code))
    import cloudpickle

    try:
        obj = cloudpickle.loads(bundle.read(PICKLE))
    except ModuleNotFoundError as exc:
        hint = ", ".join(m.requirements) or "(none listed)"
        raise BundleError(
            f"unpickling the model needs module {exc.name!r}, which is not installed here; "
            f"the bundle requires: {hint} (pip install -r {REQUIREMENTS})",
            bundle=bundle.path,
        ) from exc
    except SchemaError as exc:
        raise BundleError(
            f"the unpickled model's annotations are invalid: {exc}", bundle=bundle.path
        ) from exc
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
        raise BundleError(f"{PICKLE} cannot be unpickled ({exc!r})", bundle=bundle.path) from exc
    if not isinstance(obj, Model):
        raise BundleError(f"{PICKLE} holds a {type(obj).__name__}, not a Model", bundle=bundle.path)
    schema, binding = obj.named(m.name, m.version)
    if schema != m.schema:
        raise BundleError(
            "the unpickled model's schema differs from the one in the manifest; "
            "dump the model again with this version of its code",
            bundle=bundle.path,
        )
    return LoadedModel(m, obj, schema, binding, bundle.path)


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest of a bundle, digests checked, without unpickling anything."""
    return Bundle(path).manifest

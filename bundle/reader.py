"""The bundle: what `dump` writes, the catalog stores and the runtime serves.

A bundle is a directory, or the same content as one deterministic `.zip`:

    modelwire.json     manifest: format, name, version, methods, schema, Python
                       version, requirements, sha256 of every other file
    model.proto        the service's contract (proto3)
    model.pkl          the Model, pickled with cloudpickle
    requirements.txt   pinned requirements, inferred while pickling
    code/              source of the contributor's own modules the model needs
    examples/          example requests and the answers recorded at dump (optional)

Loading checks the format, every digest and the Python minor version before it
unpickles anything, and says what is wrong and what to do. The manifest format is
`modelwire.bundle.manifest`; writing bundles (`dump`, `build_files`) is
`modelwire.bundle.writer`, re-exported here.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelwire.bundle.examples import Example, decode_examples
from modelwire.bundle.manifest import (
    CODE_DIR,
    MANIFEST,
    PICKLE,
    PYTHON,
    REQUIREMENTS,
    Manifest,
    listing_problem,
    sha256_hex,
)
from modelwire.bundle.model import Model
from modelwire.bundle.requirements import SCRIPT_MODULE
from modelwire.bundle.writer import build_files, dump
from modelwire.codegen.annotations import Binding
from modelwire.codegen.schema import ModelSchema
from modelwire.errors import BundleError, BundleNotFound, SchemaError

if TYPE_CHECKING:
    from modelwire.codegen.values import ValueCodec

__all__ = [
    "Bundle",
    "LoadedModel",
    "Manifest",
    "build_files",
    "dump",
    "load",
    "peek_manifest",
    "read_manifest",
]


class Bundle:
    """Read access to a bundle directory or zip, with digests checked."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._zip = _open(self.path)
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
        except (zipfile.BadZipFile, zlib.error) as exc:  # a bad CRC, or garbled deflate data
            raise BundleError(
                f"file {rel} is corrupt in the zip ({exc}); copy the bundle again or dump the "
                "model again",
                bundle=self.path,
            ) from exc
        except OSError as exc:
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
        problem = listing_problem(self.manifest)
        if problem is not None:
            raise BundleError(problem, bundle=self.path)
        for rel, digest in sorted(self.manifest.files.items()):
            if digest != sha256_hex(self._read(rel)):
                raise BundleError(
                    f"file {rel} does not match its sha256 in {MANIFEST}; "
                    "the bundle was modified after it was written",
                    bundle=self.path,
                )
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
        return sha256_hex(self._read(MANIFEST))

    def files(self) -> dict[str, bytes]:
        out = {rel: self._read(rel) for rel in self.manifest.files}
        out[MANIFEST] = self._read(MANIFEST)
        return out


@dataclass
class LoadedModel:
    """A model loaded from a bundle; its methods are called in-process with Python values.

    A method takes the arguments the served method takes (`connect()`'s): the
    request's fields by position or keyword, one dict, or one NamedTuple/dataclass
    instance (see `modelwire.bundle.local`). `model.methods` holds the functions
    themselves.
    """

    manifest: Manifest
    model: Model
    schema: ModelSchema
    binding: Binding
    path: Path
    bundle: Bundle | None = field(default=None, repr=False, compare=False)
    _codec: ValueCodec | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def examples(self) -> dict[str, tuple[Example, ...]]:
        """The bundle's examples by method, decoded with the model's own classes: each
        request as the method takes it and the answer recorded at dump ({} if none)."""
        if not self.manifest.examples:
            return {}
        bundle = self.bundle or Bundle(self.path)
        return decode_examples(self.manifest, self.binding, bundle.read)

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
        if name not in model.methods:
            return getattr(model, name)  # type: ignore[no-any-return]
        from modelwire.bundle.local import LocalMethod, local_codec

        if self._codec is None:
            self._codec = local_codec(self.schema, self.binding)
        return LocalMethod(self.name, model.methods[name], self._codec.method(name))

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

    Its methods take the arguments `connect()`'s methods take, checked the same way,
    and return what the model's functions return.

    Example:
        >>> iris = load("build/iris")  # doctest: +SKIP
        >>> iris.classify(IrisInput([5.1], [3.5], [1.4], [0.2]))  # doctest: +SKIP
        >>> iris.classify(sepal_length=[5.1], sepal_width=[3.5],
        ...               petal_length=[1.4], petal_width=[0.2])  # doctest: +SKIP

    Raises:
        BundleNotFound: nothing exists at `path`.
        BundleError: the bundle is malformed or tampered with, was dumped with
            another Python minor version, or needs modules that are missing here.
    """
    bundle = Bundle(path)
    m = bundle.manifest
    if m.python != PYTHON:
        raise BundleError(
            f"it was dumped with Python {m.python} and this is Python {PYTHON}; pickled code "
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
        raise BundleError(_missing_module(bundle, exc.name), bundle=bundle.path) from exc
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
    return LoadedModel(m, obj, schema, binding, bundle.path, bundle)


def _missing_module(bundle: Bundle, name: str | None) -> str:
    """What to do about a module the pickle needs and this environment lacks."""
    if name == SCRIPT_MODULE:  # a model file's own dump() under `modelwire dump` once wrote this
        return (
            f"unpickling the model needs module {name!r}, the model file that dumped it: "
            "its code was pickled by reference, not by value; dump the model again"
        )
    # what `pip install -r` would install, as the file says it
    listed = [
        line.strip()
        for line in bundle.read(REQUIREMENTS).decode(errors="replace").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    return (
        f"unpickling the model needs module {name!r}, which is not installed here; "
        f"the bundle requires: {', '.join(listed) or '(none listed)'} "
        f"(pip install -r {REQUIREMENTS})"
    )


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest of a bundle, digests checked, without unpickling anything."""
    return Bundle(path).manifest


def peek_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest of a bundle directory or zip alone: no other file is read or hashed.

    For a name or a version; what is then done with the bundle verifies it.

    Raises:
        BundleError: `path` is not a bundle, or its manifest is malformed.
    """
    p = Path(path)
    zf = _open(p)
    if zf is None:
        return Manifest.parse((p / MANIFEST).read_bytes(), p)
    with zf:
        return Manifest.parse(zf.read(MANIFEST), p)


def _open(path: Path) -> zipfile.ZipFile | None:
    """The zip of a bundle zip, None for a bundle directory; BundleError for neither."""
    if not path.exists():
        raise BundleNotFound("no such file or directory", bundle=path)
    if path.is_file():
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise BundleError(
                "not a bundle: neither a directory nor a zip file", bundle=path
            ) from exc
        if MANIFEST not in zf.namelist():
            zf.close()
            raise BundleError(
                f"not a bundle: the zip holds no {MANIFEST} (write one with modelwire.dump)",
                bundle=path,
            )
        return zf
    if not (path / MANIFEST).is_file():
        raise BundleError(
            f"not a bundle: {MANIFEST} is missing (write one with modelwire.dump)", bundle=path
        )
    return None

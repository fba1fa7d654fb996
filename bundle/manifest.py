"""The bundle's manifest, `modelwire.json`: its file names, format, parsing and writing.

The manifest names the model, its version, methods and schema, the Python
version it was dumped with, its requirements, the files of its examples (requests
and the answers recorded at dump), and the sha256 of every other file of the
bundle, so its own digest is the bundle's identity.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelwire import __version__
from modelwire.codegen.schema import ModelSchema
from modelwire.errors import BundleError

__all__ = [
    "CODE_DIR",
    "EXAMPLES_DIR",
    "FORMAT_VERSION",
    "MANIFEST",
    "PICKLE",
    "PROTO",
    "PYTHON",
    "REQUIREMENTS",
    "ExampleFiles",
    "Manifest",
    "listing_problem",
    "render_manifest",
    "sha256_hex",
]

FORMAT_VERSION = 1
MANIFEST = "modelwire.json"
PROTO = "model.proto"
PICKLE = "model.pkl"
REQUIREMENTS = "requirements.txt"
CODE_DIR = "code"
EXAMPLES_DIR = "examples"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class ExampleFiles:
    """The files of one example: its request and the answer recorded, both wire bytes."""

    request: str
    response: str


@dataclass(frozen=True)
class Manifest:
    """The parsed `modelwire.json`.

    `examples` maps a method to its examples' files, in the order they were given;
    a bundle dumped without examples has none (the entry is optional, so bundles
    written before it existed read the same).
    """

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
    examples: Mapping[str, tuple[ExampleFiles, ...]] = field(default_factory=dict)

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
        for key in _ENTRIES:
            if key not in raw:
                raise BundleError(
                    f"{MANIFEST} has no {key!r} entry; dump the model again", bundle=bundle
                )
        for key, kind in (*_ENTRIES.items(), *_OPTIONAL.items()):
            value = raw.get(key)
            problem = None if value is None and key in _OPTIONAL else _problem(value, kind)
            if problem:
                raise BundleError(
                    f"{MANIFEST} has a malformed {key!r} entry: {problem}; dump the model again",
                    bundle=bundle,
                )
        try:
            schema = ModelSchema.from_json(raw["schema"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BundleError(
                f"{MANIFEST} has a malformed 'schema' entry ({exc!r}); dump the model again",
                bundle=bundle,
            ) from exc
        return cls(
            name=raw["name"],
            version=raw["version"],
            description=raw.get("description"),
            tags=tuple(raw.get("tags") or ()),
            python=raw["python"],
            modelwire=raw.get("modelwire") or "",
            requirements=tuple(raw.get("requirements") or ()),
            files=dict(raw["files"]),
            schema=schema,
            raw=raw,
            examples={
                method: tuple(ExampleFiles(e["request"], e["response"]) for e in listed)
                for method, listed in (raw.get("examples") or {}).items()
            },
        )


# entry -> kind: "str" a string, "list" a list of strings, "files" {path: sha256},
# "object" any JSON object (the schema, checked as it is parsed)
_ENTRIES = {"name": "str", "version": "str", "python": "str", "files": "files", "schema": "object"}
_OPTIONAL = {
    "description": "str",
    "tags": "list",
    "requirements": "list",
    "modelwire": "str",
    "examples": "examples",
}


def _problem(value: object, kind: str) -> str | None:
    """What is wrong with a manifest entry's value, or None."""
    if kind == "str":
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"expected a list of strings, got {value!r}"
        return None
    if not isinstance(value, dict):
        return f"expected an object, got {value!r}"
    if kind == "examples":
        return _examples_problem(value)
    if kind == "files":
        for rel, digest in value.items():
            if not isinstance(digest, str):
                return f"the sha256 of {rel!r} must be a string, got {digest!r}"
    return None


def _examples_problem(value: dict[Any, Any]) -> str | None:
    for method, listed in value.items():
        if not isinstance(listed, list):
            return f"the examples of {method!r} must be a list, got {listed!r}"
        for entry in listed:
            if not (
                isinstance(entry, dict)
                and set(entry) == {"request", "response"}
                and all(isinstance(v, str) for v in entry.values())
            ):
                return (
                    f"an example of {method!r} must be {{'request': PATH, 'response': PATH}}, "
                    f"got {entry!r}"
                )
    return None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def render_manifest(
    name: str,
    version: str,
    schema: ModelSchema,
    *,
    description: str | None,
    tags: Sequence[str],
    requirements: list[str],
    files: Mapping[str, bytes],
    examples: Mapping[str, Sequence[ExampleFiles]] | None = None,
) -> bytes:
    """The manifest's bytes; `files` are every other file of the bundle (examples included)."""
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
        "python": PYTHON,
        "modelwire": __version__,
        "package": schema.package,
        "service": f"{schema.package}.{schema.service}",
        "methods": methods,
        "requirements": requirements,
        "schema": schema.to_json(),
        "files": {k: sha256_hex(v) for k, v in sorted(files.items())},
    }
    if examples:  # absent rather than empty, so bundles without examples keep their bytes
        doc["examples"] = {
            method: [{"request": e.request, "response": e.response} for e in listed]
            for method, listed in sorted(examples.items())
        }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def listing_problem(manifest: Manifest) -> str | None:
    """What is wrong with the file list of a manifest, whatever holds the files: a path
    that could leave the bundle or names the manifest itself, or a required file missing
    (model.proto, model.pkl). None if nothing."""
    for rel in manifest.files:
        parts = rel.split("/")
        if rel.startswith("/") or "\\" in rel or ".." in parts or rel == MANIFEST:
            return f"{MANIFEST} lists an invalid path {rel!r}"
    for required in (PROTO, PICKLE):
        if required not in manifest.files:
            return f"{MANIFEST} does not list {required}"
    methods = {m.name for m in manifest.schema.methods}
    for method, listed in manifest.examples.items():
        if method not in methods:
            return f"{MANIFEST} has examples of {method!r}, which is not a method of the model"
        for entry in listed:
            for rel in (entry.request, entry.response):
                if rel not in manifest.files:
                    return f"{MANIFEST} names an example file {rel!r} that it does not list"
    return None

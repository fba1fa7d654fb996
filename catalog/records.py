"""What the catalog records about a model version, and the rules its names and versions follow.

A pushed bundle becomes a `VersionRecord` (`version_record`: its formats come from
its schema, never from what the pusher says); a stored one is read back as a
`ModelRow`. Both are plain values: this module touches no database and no wire.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelwire.bundle.manifest import Manifest
from modelwire.codegen.compat import render_type
from modelwire.codegen.schema import Field, ModelSchema, OptionalType
from modelwire.errors import InvalidRequest

__all__ = [
    "FIELD_SEP",
    "IndexRow",
    "ModelRow",
    "VersionRecord",
    "check_name",
    "check_version",
    "fields_of",
    "index_rows",
    "version_key",
    "version_record",
    "version_sort_key",
]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,127}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$")

# (method, side, field, required): the search index of one version
IndexRow = tuple[str, str, str, bool]
FIELD_SEP = "\x1f"  # joins the field names of a method's `required_key`


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidRequest(
            f"model name {name!r} must be lower-case letters, digits, '-' or '_', "
            "starting with a letter",
            subject=name,
        )


def check_version(version: str) -> None:
    if not _VERSION.match(version):
        raise InvalidRequest(
            f"version {version!r} must look like 1.2.0 (or 1.2.0-rc1)", subject=version
        )


def version_key(version: str) -> tuple[Any, ...]:
    """Order versions numerically: 1.10.0 after 1.9.0; a pre-release before its release."""
    core, _, pre = version.split("+", 1)[0].partition("-")
    nums = tuple(int(p) if p.isdigit() else 0 for p in core.split("."))
    nums = nums + (0,) * (3 - len(nums))
    return (*nums, 0 if pre else 1, pre)


def version_sort_key(version: str) -> str:
    """`version_key` as text that SQLite orders the same way (the `vkey` column)."""
    *nums, release, pre = version_key(version)
    return ".".join(f"{n:012d}" for n in nums) + (".1" if release else f".0{pre}")


@dataclass(frozen=True)
class VersionRecord:
    """What the catalog records about a pushed bundle, besides its bytes.

    Attributes:
        name, version: as in the bundle's manifest.
        manifest: the manifest (`modelwire.json`) as a JSON object.
        proto: the bundle's `model.proto`.
        service: the full name of the gRPC service.
        methods: one summary per method (name, rpc, request, response, doc,
            input, output), as `search` and `show` list them.
        index: the request and response fields of every method, for type search.
    """

    name: str
    version: str
    manifest: Mapping[str, Any]
    proto: str
    service: str
    methods: tuple[Mapping[str, str], ...]
    index: tuple[IndexRow, ...]


@dataclass(frozen=True)
class ModelRow:
    """One stored model version, without its manifest and proto (see `Store.document`)."""

    id: int
    name: str
    version: str
    owner: str
    sha256: str
    size: int
    service: str
    methods: tuple[dict[str, str], ...]
    published: bool
    description: str
    category: str
    tags: tuple[str, ...]
    created: str


def fields_of(schema: ModelSchema, message: str) -> tuple[Field, ...]:
    """The fields of one of the schema's messages; none for a name it does not define."""
    try:
        return schema.message(message).fields
    except KeyError:  # not a message of this schema: nothing to list by name
        return ()


def index_rows(schema: ModelSchema) -> list[IndexRow]:
    """(method, side, field, required) of every method's request and response fields."""
    rows: list[IndexRow] = []
    for m in schema.methods:
        for side, name in (("request", m.request), ("response", m.response)):
            rows.extend(
                (m.name, side, f.name, not isinstance(f.type, OptionalType))
                for f in fields_of(schema, name)
            )
    return rows


def _format(schema: ModelSchema, message: str) -> str:
    """A message's fields as the proto declares them: `text: string, limit: int32`."""
    return ", ".join(
        f"{f.name}: {render_type(f.type, top=False)}" for f in fields_of(schema, message)
    )


def version_record(manifest: Manifest, proto: str) -> VersionRecord:
    """What the catalog records about a bundle: its formats come from its schema (its proto)."""
    schema = manifest.schema
    return VersionRecord(
        name=manifest.name,
        version=manifest.version,
        manifest=dict(manifest.raw),
        proto=proto,
        service=f"{schema.package}.{schema.service}",
        methods=tuple(
            {
                "name": m.name,
                "rpc": m.rpc,
                "request": m.request,
                "response": m.response,
                "doc": m.doc or "",
                "input": _format(schema, m.request),
                "output": _format(schema, m.response),
            }
            for m in schema.methods
        ),
        index=tuple(index_rows(schema)),
    )

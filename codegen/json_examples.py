"""Example JSON requests, generated from a schema, for the OpenAPI document and /docs.

Each example is valid canonical proto3 JSON of its message (lowerCamelCase names,
64-bit integers as strings, enums by name), with every field given once: one element
per list, one entry per map, the first real value of an enum, a small 2x2 tensor (as
nested arrays of the declared dtype's kind) where a Tensor is expected. Recursive
messages stop at a fixed depth. Pure: no protobuf.
"""

from __future__ import annotations

from typing import Any

from modelwire.codegen.json_facts import json_name, tensor_dtypes
from modelwire.codegen.lowering import ProtoField, ProtoFile, lower
from modelwire.codegen.schema import TENSOR_MESSAGE, ModelSchema

__all__ = ["example_request"]

_MAX_DEPTH = 4
_SCALAR_EXAMPLES: dict[str, Any] = {
    "double": 0.5,
    "float": 0.5,
    "int64": "1",
    "uint64": "1",
    "int32": 1,
    "uint32": 1,
    "bool": True,
    "string": "text",
    "bytes": "aGVsbG8=",
}
_MAP_KEYS: dict[str, str] = {"string": "key", "bool": "true"}


def _tensor_example(dtype: str | None) -> Any:
    if dtype == "bool":
        return [[True, False], [False, True]]
    if dtype is not None and dtype.startswith(("int", "uint")):
        return [[1, 2], [3, 4]]
    return [[0.5, 1.5], [2.5, 3.5]]


class _Examples:
    def __init__(self, schema: ModelSchema) -> None:
        self.pf: ProtoFile = lower(schema)
        self.messages = {m.name: m for m in self.pf.messages}
        self.enums = {e.name: e for e in self.pf.enums}
        self.dtypes = tensor_dtypes(schema)

    def message(self, name: str, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.messages[name].fields:
            value = self.field(name, f, depth)
            if value is not None:
                out[json_name(f.name)] = value
        return out

    def field(self, owner: str, f: ProtoField, depth: int) -> Any:
        element = self.element(owner, f, depth)
        if element is None:
            return None
        if f.map_key is not None:
            return {_MAP_KEYS.get(f.map_key, "1"): element}
        if f.label == "repeated":
            return [element]
        return element

    def element(self, owner: str, f: ProtoField, depth: int) -> Any:
        if f.is_enum:
            values = self.enums[f.type].values
            return values[1][0] if len(values) > 1 else values[0][0]
        if not f.is_message:
            return _SCALAR_EXAMPLES[f.type]
        if f.type == TENSOR_MESSAGE:
            return _tensor_example(self.dtypes.get((owner, f.name)))
        if depth >= _MAX_DEPTH:
            return None
        return self.message(f.type, depth + 1)


def example_request(schema: ModelSchema, message: str) -> dict[str, Any]:
    """An example JSON value of `message` (a request message of `schema`)."""
    return _Examples(schema).message(message, 0)

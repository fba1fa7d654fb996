"""Requests generated from a schema: valid by type for every method, the same bytes every
time, and finite for messages that contain themselves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from modelwire.bundle.model import Model
from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.codegen.schema import ModelSchema
from modelwire.codegen.synthetic import synthetic_request
from modelwire.codegen.values import ValueCodec
from tests.fixtures.models import echo, rich


def _encode(schema: ModelSchema, codec: ValueCodec, method: str) -> bytes:
    value = synthetic_request(schema, method)
    mc = codec.method(method)
    if schema.method(method).params is None:
        return mc.encode_request((value,), {})
    return mc.encode_request((), value)


@pytest.mark.parametrize("fixture", [rich, echo], ids=["rich", "echo"])
def test_every_method_gets_a_request_the_model_side_decodes(fixture: Any) -> None:
    model = fixture.model()
    schema, binding = model.named("m", "1.0.0")
    classes = message_classes(file_descriptor(schema))
    client, server = ValueCodec(schema, classes), ValueCodec(schema, classes, binding)
    for m in schema.methods:
        args, kwargs = server.method(m.name).decode_request(_encode(schema, client, m.name))
        assert args or kwargs, m.name


def test_the_values_are_fixed_one_element_each_every_field_set() -> None:
    schema, binding = rich.model().named("m", "1.0.0")
    classes = message_classes(file_descriptor(schema))
    server = ValueCodec(schema, classes, binding).method("echo")
    (detection,), _ = server.decode_request(_encode(schema, ValueCodec(schema, classes), "echo"))
    box = rich.Box(0.5, 0.5, 0.5, 0.5, rich.Kind.CAT)
    assert detection.boxes == [box]
    assert detection.scores.dtype == np.float32
    assert detection.scores.tolist() == [1.0]
    assert detection.names == {"key": 1}
    assert detection.grid == [[0.5]]
    assert detection.best == box
    assert detection.note == "example"
    assert detection.kinds == [rich.Kind.CAT]


def test_keyword_methods_get_every_parameter() -> None:
    schema, binding = rich.model().named("m", "1.0.0")
    classes = message_classes(file_descriptor(schema))
    server = ValueCodec(schema, classes, binding).method("tally")
    _, kwargs = server.decode_request(_encode(schema, ValueCodec(schema, classes), "tally"))
    box = rich.Box(0.5, 0.5, 0.5, 0.5, rich.Kind.CAT)
    assert kwargs == {
        "counts": {1: ["example"]},
        "weights": {"key": box},
        "matrix": [[1]],
        "flags": [True],
        "payload": b"example",
        "kind": rich.Kind.CAT,
        "limit": 1,
    }


def test_the_same_schema_gives_the_same_bytes() -> None:
    schema, _ = rich.model().named("m", "1.0.0")
    codec = ValueCodec(schema, message_classes(file_descriptor(schema)))
    again = ValueCodec(schema, message_classes(file_descriptor(schema)))
    for m in schema.methods:
        assert _encode(schema, codec, m.name) == _encode(schema, again, m.name)


@dataclass
class Node:
    name: str
    children: list[Node]
    parent: Node | None


def grow(n: Node) -> int:
    return len(n.children)


def test_a_message_that_contains_itself_stops_three_levels_down() -> None:
    schema, _ = Model(grow=grow).named("m", "1.0.0")
    value = synthetic_request(schema, "grow")
    depth = 0
    while value["children"]:
        assert value["parent"] is not None
        value = value["children"][0]
        depth += 1
    assert depth == 3
    assert value == {"name": "example", "children": [], "parent": None}


def test_an_unknown_method_is_a_key_error() -> None:
    schema, _ = echo.model().named("m", "1.0.0")
    with pytest.raises(KeyError):
        synthetic_request(schema, "nope")

"""The router's stricter question, `wire_identical` (can the consumer parse the producer's
bytes as they are?), pinned by a table with ids; and a property: every type the modeling
API produces is assignable and wire-identical to itself."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from modelwire.bundle.model import Model
from modelwire.codegen.compat import Typed, assignable, wire_identical
from modelwire.codegen.schema import EnumType, ListType, MessageType, OptionalType, TensorType
from tests.broker.schemas import (
    BOX_INT,
    BOXES,
    COLOR,
    COLOR_MORE,
    COLOR_RENUMBERED,
    F32,
    F64,
    I32,
    I64,
    NODE_I32,
    NODE_I64,
    SCENE,
    STR,
    U32,
    U64,
    numbered,
    root,
    schema,
)
from tests.strategies import annotations

# (producer, consumer, whether the consumer can parse the producer's bytes as they are);
# only assignable pairs are asked
WIRE = [
    pytest.param(root(("n", I64)), root(("n", I64)), True, id="same"),
    pytest.param(root(("n", I32)), root(("n", I64)), True, id="int32-int64-varint"),
    pytest.param(root(("n", U32)), root(("n", U64)), True, id="uint32-uint64-varint"),
    pytest.param(root(("f", F32)), root(("f", F64)), False, id="float-double-fixed-width"),
    pytest.param(root(("a", I64), ("b", STR)), root(("a", I64)), True, id="extra-field-skipped"),
    pytest.param(
        Typed(schema(numbered("R", ("a", 1, I64), ("b", 2, I64))), MessageType("R")),
        Typed(schema(numbered("R", ("b", 1, I64), ("a", 2, I64))), MessageType("R")),
        False,
        id="renumbered",
    ),
    pytest.param(
        Typed(schema(numbered("R", ("a", 1, I64))), MessageType("R")),
        Typed(schema(numbered("R", ("b", 1, OptionalType(I64)), ("a", 2, I64))), MessageType("R")),
        False,
        id="renamed-number-clash",
    ),
    pytest.param(
        root(("a", I64)), root(("a", I64), ("b", OptionalType(STR))), True, id="missing-optional"
    ),
    pytest.param(root(("a", I64)), root(("a", OptionalType(I64))), False, id="presence-differs"),
    pytest.param(root(("a", OptionalType(I64))), root(("a", I64)), True, id="optional-to-required"),
    pytest.param(
        root(("xs", ListType(I32))), root(("xs", ListType(I64))), True, id="packed-widening"
    ),
    pytest.param(
        root(("c", EnumType("Color")), enums=(COLOR,)),
        root(("c", EnumType("Color")), enums=(COLOR_MORE,)),
        True,
        id="enum-same-numbers",
    ),
    pytest.param(
        root(("c", EnumType("Color")), enums=(COLOR,)),
        root(("c", EnumType("Color")), enums=(COLOR_RENUMBERED,)),
        False,
        id="enum-renumbered",
    ),
    pytest.param(
        root(("t", TensorType(None))), root(("t", TensorType("uint8"))), True, id="tensor-any"
    ),
    pytest.param(
        root(("scene", MessageType("Scene")), extra=(SCENE, BOXES, BOX_INT)),
        root(("scene", MessageType("Scene")), extra=(SCENE, BOXES, BOX_INT)),
        True,
        id="nested-same",
    ),
    pytest.param(
        root(("tree", MessageType("Node")), extra=(NODE_I32,)),
        root(("tree", MessageType("Node")), extra=(NODE_I64,)),
        True,
        id="recursive-varint-widening",
    ),
    # a top-level field of a fan-in: a 0 the producer leaves out must not read as unset
    pytest.param(
        Typed(schema(), I64), Typed(schema(), OptionalType(I64)), False, id="field-presence"
    ),
    pytest.param(
        Typed(schema(), OptionalType(I64)),
        Typed(schema(), I64),
        True,
        id="field-optional-to-required",
    ),
    pytest.param(Typed(schema(), I32), Typed(schema(), I64), True, id="field-widening"),
]


@pytest.mark.parametrize(("producer", "consumer", "identical"), WIRE)
def test_wire_identical(producer, consumer, identical):
    assert assignable(producer, consumer) == []
    assert wire_identical(producer, consumer) is identical


def _typed(annotation: Any) -> Typed:
    def f(x: Any) -> None: ...

    f.__annotations__ = {"x": annotation, "return": annotation}
    s = Model(f=f).schema
    request = s.message(s.methods[0].request)
    return Typed(s, request.fields[0].type)


@given(annotations(max_leaves=4))
def test_every_type_fits_itself(annotation):
    t = _typed(annotation)
    assert assignable(t, t) == []
    assert wire_identical(t, t)

"""Hand-built schemas for the type tables of test_assignable.py and test_wire_identical.py:
the scalar types, messages numbered in the order of their fields, and a few shapes (boxes,
scenes, recursive nodes, mutually recursive trees, enums)."""

from __future__ import annotations

from typing import Any

from modelwire.codegen.compat import Typed
from modelwire.codegen.schema import (
    EnumSchema,
    Field,
    ListType,
    Message,
    MessageType,
    ModelSchema,
    Scalar,
    ScalarType,
    TypeNode,
)

I32, I64 = ScalarType(Scalar.INT32), ScalarType(Scalar.INT64)
U32, U64 = ScalarType(Scalar.UINT32), ScalarType(Scalar.UINT64)
F32, F64 = ScalarType(Scalar.FLOAT), ScalarType(Scalar.DOUBLE)
STR, BYTES, BOOL = ScalarType(Scalar.STRING), ScalarType(Scalar.BYTES), ScalarType(Scalar.BOOL)


def msg(name: str, *fields: tuple[str, TypeNode]) -> Message:
    """A message whose fields are numbered from 1 in the order given."""
    return Message(name, tuple(Field(n, i, t) for i, (n, t) in enumerate(fields, start=1)))


def numbered(name: str, *fields: tuple[str, int, TypeNode]) -> Message:
    return Message(name, tuple(Field(n, i, t) for n, i, t in fields))


def schema(*messages: Message, enums: tuple[EnumSchema, ...] = ()) -> ModelSchema:
    return ModelSchema("m", "pkg.v1", "MService", (), messages, enums)


def root(*fields: tuple[str, TypeNode], extra: tuple[Message, ...] = (), **kw: Any) -> Typed:
    """The message `R` with `fields`, in a schema of its own with the `extra` messages."""
    return Typed(schema(msg("R", *fields), *extra, **kw), MessageType("R"))


BOX_INT = msg("Box", ("x", I64), ("y", I64))
BOX_DOUBLE = msg("Box", ("x", F64), ("y", F64))
BOXES = msg("Boxes", ("boxes", ListType(MessageType("Box"))))
SCENE = msg("Scene", ("faces", MessageType("Boxes")), ("label", STR))
NODE_I32 = msg("Node", ("value", I32), ("children", ListType(MessageType("Node"))))
NODE_I64 = msg("Node", ("value", I64), ("children", ListType(MessageType("Node"))))
NODE_STR = msg("Node", ("value", STR), ("children", ListType(MessageType("Node"))))
# mutual recursion: a Tree holds Forests, a Forest holds Trees
TREE = msg("Tree", ("label", STR), ("forest", MessageType("Forest")))
FOREST = msg("Forest", ("trees", ListType(MessageType("Tree"))))
TREE_BYTES = msg("Tree", ("label", BYTES), ("forest", MessageType("Forest")))
COLOR = EnumSchema("Color", (("RED", 1), ("GREEN", 2)))
COLOR_MORE = EnumSchema("Color", (("RED", 1), ("GREEN", 2), ("BLUE", 3)))
COLOR_RENUMBERED = EnumSchema("Color", (("GREEN", 1), ("RED", 2)))

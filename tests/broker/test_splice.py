"""Transcoding between message classes (`modelwire.broker.splice.transcode`): enum values
are matched by name, and a map made for one pair of enums is never used for another.

Descriptor objects are made on access and freed when unused, so their `id()`s are reused
all the time, within one pool and across pools; maps were once cached under those ids."""

from __future__ import annotations

import itertools

import pytest

from modelwire.broker.splice import EnumMaps, transcode
from modelwire.codegen.descriptors import MessageClasses, file_descriptor, message_classes
from modelwire.codegen.schema import EnumSchema, EnumType, Field, ListType, Message, ModelSchema

COLORS = ("RED", "GREEN", "BLUE", "CYAN")
ORDERS = list(itertools.permutations(COLORS))


def enum(name: str, order: tuple[str, ...]) -> EnumSchema:
    """Enum `name` whose values are numbered from 1 in `order`."""
    return EnumSchema(name, tuple((value, n) for n, value in enumerate(order, start=1)))


def pool(messages: tuple[Message, ...], enums: tuple[EnumSchema, ...]) -> MessageClasses:
    """The messages and enums in a descriptor pool of their own."""
    return message_classes(
        file_descriptor(ModelSchema("m", "t.v1", "TService", (), messages, enums))
    )


def fields(name: str, *kinds: str) -> Message:
    return Message(name, tuple(Field(f"e{n}", n, EnumType(k)) for n, k in enumerate(kinds, 1)))


@pytest.mark.parametrize("shared", [False, True], ids=["maps-per-call", "one-cache"])
def test_two_enum_fields_of_one_message_keep_their_own_maps(shared):
    """Color -> Paint renumbers, Size -> Dim does not: neither map serves the other."""
    classes = pool(
        (fields("A", "Color", "Size"), fields("B", "Paint", "Dim")),
        (
            enum("Color", COLORS),
            enum("Paint", COLORS[::-1]),
            enum("Size", COLORS),
            enum("Dim", COLORS),
        ),
    )
    a, b = classes.get("A"), classes.get("B")
    cache = EnumMaps() if shared else None
    got = set()
    for _ in range(50):
        out = b()
        transcode(a(e1=1, e2=1), out, cache)  # RED, RED
        got.add((out.e1, out.e2))
    assert got == {(4, 1)}


@pytest.mark.parametrize("shared", [False, True], ids=["maps-per-call", "one-cache"])
def test_pools_made_and_dropped_never_share_maps(shared):
    """A pool dropped frees its descriptors, and the next pool's get their addresses."""
    cache = EnumMaps() if shared else None
    wrong = []
    for i in range(200):
        src, dst = ORDERS[i % len(ORDERS)], ORDERS[(7 * i + 3) % len(ORDERS)]
        classes = pool(
            (fields("A", "Color"), fields("B", "Paint")), (enum("Color", src), enum("Paint", dst))
        )
        for name in COLORS:
            out = classes.get("B")()
            transcode(classes.get("A")(e1=src.index(name) + 1), out, cache)
            if out.e1 != dst.index(name) + 1:
                wrong.append((i, name, out.e1, dst.index(name) + 1))
        del classes, out
    assert wrong == []


def test_a_value_the_consumer_lacks_becomes_zero():
    message = Message(
        "A", (Field("one", 1, EnumType("Color")), Field("many", 2, ListType(EnumType("Color"))))
    )
    consumer = Message(
        "B", (Field("one", 1, EnumType("Paint")), Field("many", 2, ListType(EnumType("Paint"))))
    )
    classes = pool((message, consumer), (enum("Color", COLORS), enum("Paint", ("GREEN", "RED"))))
    out = classes.get("B")()
    transcode(classes.get("A")(one=3, many=[1, 4, 2]), out)  # BLUE; RED, CYAN, GREEN
    assert (out.one, list(out.many)) == (0, [2, 0, 1])

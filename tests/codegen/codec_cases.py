"""The model the value-codec tests encode and decode with ("codec-cases"): every kind of value
a parameter can declare (scalars, numpy scalars, lists, maps, messages, Optional, enums,
declared and undeclared Tensors), its codec, and its protoc-compiled stubs."""

from __future__ import annotations

import enum
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from modelwire.bundle.model import Model
from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.codegen.proto import render_proto
from modelwire.codegen.values import MethodCodec, ValueCodec
from tests.codegen.toolchain import StubCache


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Inner(NamedTuple):
    n: int
    ratio: float


class Reading(NamedTuple):
    count: int
    level: float
    flag: bool
    ids: list[int]
    weights: list[float]
    grid: list[list[float]]
    inner: Inner
    by_name: dict[str, int]
    small: np.int8
    half: np.float32
    maybe: int | None
    color: Color


class Image(NamedTuple):
    pixels: NDArray[np.uint8]
    label: str


class Scene(NamedTuple):
    image: Image
    depth: NDArray[np.float32]
    extra: list[NDArray[np.uint8]]
    anything: np.ndarray
    mask: NDArray[np.bool_] | None


def record(r: Reading) -> Reading:
    return r


def scene(s: Scene) -> Scene:
    return s


def pixels(x: NDArray[np.uint8]) -> NDArray[np.uint8]:
    return x


def floats(x: NDArray[np.float32]) -> np.ndarray:
    return x


def anything(x: np.ndarray) -> np.ndarray:
    return x


def counts(d: dict[str, int]) -> dict[np.int32, np.float32]:
    return {}


def shift(p: Inner, by: int) -> Inner:
    return p


MODEL = Model(
    record=record,
    scene=scene,
    pixels=pixels,
    floats=floats,
    anything=anything,
    counts=counts,
    shift=shift,
)
SCHEMA, BINDING = MODEL.named("codec-cases", "1.0.0")
CODEC = ValueCodec(SCHEMA, message_classes(file_descriptor(SCHEMA)), BINDING)


def method(name: str) -> MethodCodec:
    return CODEC.method(name)


def reading(**changes: object) -> Reading:
    base = Reading(
        count=3,
        level=0.5,
        flag=True,
        ids=[1, 2],
        weights=[0.25],
        grid=[[1.0, 2.0], []],
        inner=Inner(1, 2.0),
        by_name={"a": 1},
        small=np.int8(-3),
        half=np.float32(1.5),
        maybe=None,
        color=Color.GREEN,
    )
    return base._replace(**changes)


def stub_module(stub_cache: StubCache):  # type: ignore[no-untyped-def]
    return stub_cache.module(render_proto(SCHEMA))

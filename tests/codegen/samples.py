"""A broad set of models covering every row of DESIGN.md's type mapping, for the tests that
hold generated protos against protoc, buf and the descriptor builder.

`SAMPLES` maps a model name to a factory; `sample(name)` returns its schema under that name
(every sample gets its own proto package, so their stubs can share one process).
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Callable
from typing import Any, NamedTuple, Optional

import numpy as np
from numpy.typing import NDArray

from modelwire.bundle.model import Model
from modelwire.codegen.annotations import Binding
from modelwire.codegen.schema import ModelSchema
from tests.fixtures.models import echo, future_annotations

# ---------------------------------------------------------------- the DESIGN.md example


class IrisInput(NamedTuple):
    sepal_length: list[float]
    sepal_width: list[float]
    petal_length: list[float]
    petal_width: list[float]


class IrisOutput(NamedTuple):
    iris_type: list[int]


def classify(x: IrisInput) -> IrisOutput:
    """Classify iris flowers."""
    return IrisOutput([0 for _ in x.sepal_length])


def iris() -> Model:
    return Model(classify=classify)


# ---------------------------------------------------------------- scalars


def python_scalars(a: int, b: float, c: bool, d: str, e: bytes) -> str:
    return f"{a}{b}{c}{d}{e!r}"


def numpy_scalars(
    f16: np.float16,
    f32: np.float32,
    f64: np.float64,
    i8: np.int8,
    i16: np.int16,
    i32: np.int32,
    i64: np.int64,
    u8: np.uint8,
    u16: np.uint16,
    u32: np.uint32,
    u64: np.uint64,
    flag: np.bool_,
) -> np.float32:
    return np.float32(f32)


def scalars() -> Model:
    return Model(python_scalars=python_scalars, numpy_scalars=numpy_scalars)


# ---------------------------------------------------------------- containers


class Grid(NamedTuple):
    rows: list[list[float]]
    cube: list[list[list[np.int32]]]
    names: list[str]
    counts: dict[str, int]
    by_id: dict[int, str]
    flags: dict[bool, float]
    narrow: dict[np.int32, np.uint8]
    wide: dict[np.uint64, bytes]
    groups: dict[str, list[int]]
    tables: dict[str, dict[str, float]]
    records: list[dict[str, int]]
    deep: dict[str, list[list[str]]]


def transpose(g: Grid) -> list[list[float]]:
    return [list(col) for col in zip(*g.rows, strict=False)]


def containers() -> Model:
    return Model(transpose=transpose)


# ---------------------------------------------------------------- enums


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class TrafficLight(enum.Enum):
    stop = "r"
    caution = "y"
    go = "g"


class Priority(enum.IntEnum):
    LOW = 10
    HIGH = 20


class HTTPStatus(enum.Enum):
    """Acronyms: buf expects the prefix HTTP_STATUS_."""

    OK = 200
    NOT_FOUND = 404


class Rgb2Hex(enum.Enum):
    Red = "r"


class Paint(NamedTuple):
    color: Color
    light: TrafficLight
    priority: Priority
    palette: list[Color]
    by_name: dict[str, TrafficLight]
    maybe: Color | None
    status: HTTPStatus
    conversions: list[Rgb2Hex]


def repaint(p: Paint) -> Color:
    return p.color


def enums() -> Model:
    return Model(repaint=repaint)


# ---------------------------------------------------------------- tensors


class Frame(NamedTuple):
    pixels: NDArray[np.uint8]
    depth: np.ndarray
    anything: NDArray[Any]
    bare: NDArray  # type: ignore[type-arg]
    layers: list[NDArray[np.float32]]
    named: dict[str, NDArray[np.int64]]
    mask: Optional[NDArray[np.bool_]]  # noqa: UP045 -- the typing spelling is tested


class Labelled(NamedTuple):
    frame: Frame
    score: float


def segment(frame: Frame) -> NDArray[np.float32]:
    return frame.pixels.astype(np.float32)


def annotate(a: Labelled) -> Labelled:
    return a


def stack(images: list[NDArray[np.uint8]], weights: NDArray[np.float64]) -> NDArray[np.complex64]:
    return np.zeros(1, np.complex64)


def tensors() -> Model:
    return Model(segment=segment, annotate=annotate, stack=stack)


# ---------------------------------------------------------------- optional and messages


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Segment:
    start: Point
    end: Point
    label: str | None = None


class Drawing(NamedTuple):
    segments: list[Segment]
    origin: Optional[Point]  # noqa: UP045
    width: int | None
    scale: np.float32 | None
    visible: bool | None
    title: str | None
    thumbnail: bytes | None


class Tree(NamedTuple):
    name: str
    children: list[Tree]
    attributes: dict[str, Tree]


def draw(d: Drawing, zoom: float | None) -> Drawing | None:
    return d


def walk(t: Tree) -> list[str]:
    return [t.name]


def messages() -> Model:
    return Model(draw=draw, walk=walk)


# ---------------------------------------------------------------- method shapes


def ping() -> None:
    """Nothing in, nothing out."""


def predict_proba(features: list[float], top_k: int) -> dict[str, float]:
    return {}


def shapes() -> Model:
    return Model(ping=ping, predict_proba=predict_proba)


# ---------------------------------------------------------------- typing spellings


def legacy(
    values: typing.List[typing.List[int]],  # noqa: UP006 -- the typing spellings are tested
    lookup: typing.Dict[str, typing.List[float]],  # noqa: UP006
    maybe: typing.Optional[str],  # noqa: UP045
    either: typing.Union[int, None],  # noqa: UP007
) -> typing.List[str]:  # noqa: UP006
    return []


def spellings() -> Model:
    return Model(legacy=legacy)


SAMPLES: dict[str, Callable[[], Model]] = {
    "iris": iris,
    "scalars": scalars,
    "containers": containers,
    "enums": enums,
    "tensors": tensors,
    "messages": messages,
    "shapes": shapes,
    "spellings": spellings,
    "echo": echo.model,
    "future": future_annotations.model,
}


def sample(name: str, version: str = "1.0.0") -> tuple[ModelSchema, Binding]:
    """The schema of sample `name`, published under the name `sample-<name>`."""
    return SAMPLES[name]().named(f"sample-{name}", version)

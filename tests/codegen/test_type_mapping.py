"""DESIGN.md's type mapping table, row by row: Python annotation -> proto3 text and schema IR."""

from __future__ import annotations

import dataclasses
import enum
import typing
from typing import Any, NamedTuple, Optional

import numpy as np
import pytest
from numpy.typing import NDArray

from modelwire.codegen.proto import render_proto
from modelwire.codegen.schema import (
    ListType,
    MapType,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
)
from tests.codegen.annotated import field_model
from tests.codegen.prototext import block, definition_name, definitions


class Point(NamedTuple):
    x: float
    y: float


@dataclasses.dataclass
class Box:
    top_left: Point
    size: list[float]
    label: str | None


class Segment(NamedTuple):
    start: Point
    end: Point


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
    OK = 200
    NOT_FOUND = 404


class Rgb2Hex(enum.Enum):
    red = 1
    dark_red = 2


POINT = "message Point {\n  double x = 1;\n  double y = 2;\n}"
COLOR = "enum Color {\n  COLOR_UNSPECIFIED = 0;\n  COLOR_RED = 1;\n  COLOR_GREEN = 2;\n}"
TENSOR = (
    "// An n-dimensional array: `data` holds the elements as raw little-endian bytes in\n"
    "// C (row-major) order, `shape` the size of each dimension (empty for a scalar).\n"
    "message Tensor {\n"
    "  DataType dtype = 1;\n"
    "  repeated int64 shape = 2;\n"
    "  bytes data = 3;\n"
    "}"
)
# the DataType numbers are a wire contract: they must never change
DATA_TYPE = """// The element type of a Tensor.
enum DataType {
  DATA_TYPE_UNSPECIFIED = 0;
  DATA_TYPE_BOOL = 1;
  DATA_TYPE_INT8 = 2;
  DATA_TYPE_INT16 = 3;
  DATA_TYPE_INT32 = 4;
  DATA_TYPE_INT64 = 5;
  DATA_TYPE_UINT8 = 6;
  DATA_TYPE_UINT16 = 7;
  DATA_TYPE_UINT32 = 8;
  DATA_TYPE_UINT64 = 9;
  DATA_TYPE_FLOAT16 = 10;
  DATA_TYPE_FLOAT32 = 11;
  DATA_TYPE_FLOAT64 = 12;
  DATA_TYPE_COMPLEX64 = 13;
  DATA_TYPE_COMPLEX128 = 14;
}"""
TENSOR_DEFS = (TENSOR, DATA_TYPE)


def wrapper(name: str, line: str) -> str:
    return f"message {name} {{\n  {line}\n}}"


# (id, annotation, the line of field `x`, every other definition the proto must hold)
ROWS: list[tuple[str, Any, str, tuple[str, ...]]] = [
    ("int", int, "int64 x = 1;", ()),
    ("float", float, "double x = 1;", ()),
    ("bool", bool, "bool x = 1;", ()),
    ("str", str, "string x = 1;", ()),
    ("bytes", bytes, "bytes x = 1;", ()),
    ("np.float16", np.float16, "float x = 1;", ()),
    ("np.float32", np.float32, "float x = 1;", ()),
    ("np.float64", np.float64, "double x = 1;", ()),
    ("np.int8", np.int8, "int32 x = 1;", ()),
    ("np.int16", np.int16, "int32 x = 1;", ()),
    ("np.int32", np.int32, "int32 x = 1;", ()),
    ("np.int64", np.int64, "int64 x = 1;", ()),
    ("np.uint8", np.uint8, "uint32 x = 1;", ()),
    ("np.uint16", np.uint16, "uint32 x = 1;", ()),
    ("np.uint32", np.uint32, "uint32 x = 1;", ()),
    ("np.uint64", np.uint64, "uint64 x = 1;", ()),
    ("np.bool_", np.bool_, "bool x = 1;", ()),
    ("list[int]", list[int], "repeated int64 x = 1;", ()),
    ("list[np.float32]", list[np.float32], "repeated float x = 1;", ()),
    ("typing.List[str]", typing.List[str], "repeated string x = 1;", ()),  # noqa: UP006
    (
        "list[list[float]]",
        list[list[float]],
        "repeated ListOfDouble x = 1;",
        (wrapper("ListOfDouble", "repeated double values = 1;"),),
    ),
    (
        "list[list[np.uint8]]",
        list[list[np.uint8]],
        "repeated ListOfUint32 x = 1;",
        (wrapper("ListOfUint32", "repeated uint32 values = 1;"),),
    ),
    (
        "list[list[list[int]]]",
        list[list[list[int]]],
        "repeated ListOfListOfInt64 x = 1;",
        (
            wrapper("ListOfInt64", "repeated int64 values = 1;"),
            wrapper("ListOfListOfInt64", "repeated ListOfInt64 values = 1;"),
        ),
    ),
    ("dict[str, float]", dict[str, float], "map<string, double> x = 1;", ()),
    ("typing.Dict[int, str]", typing.Dict[int, str], "map<int64, string> x = 1;", ()),  # noqa: UP006
    ("dict[bool, bytes]", dict[bool, bytes], "map<bool, bytes> x = 1;", ()),
    ("dict[np.int32, int]", dict[np.int32, int], "map<int32, int64> x = 1;", ()),
    ("dict[np.uint64, np.float32]", dict[np.uint64, np.float32], "map<uint64, float> x = 1;", ()),
    (
        "dict[str, list[float]]",
        dict[str, list[float]],
        "map<string, ListOfDouble> x = 1;",
        (wrapper("ListOfDouble", "repeated double values = 1;"),),
    ),
    (
        "dict[str, dict[str, int]]",
        dict[str, dict[str, int]],
        "map<string, MapOfStringToInt64> x = 1;",
        (wrapper("MapOfStringToInt64", "map<string, int64> values = 1;"),),
    ),
    (
        "list[dict[int, bool]]",
        list[dict[int, bool]],
        "repeated MapOfInt64ToBool x = 1;",
        (wrapper("MapOfInt64ToBool", "map<int64, bool> values = 1;"),),
    ),
    (
        "dict[str, list[list[str]]]",
        dict[str, list[list[str]]],
        "map<string, ListOfListOfString> x = 1;",
        (
            wrapper("ListOfString", "repeated string values = 1;"),
            wrapper("ListOfListOfString", "repeated ListOfString values = 1;"),
        ),
    ),
    ("NamedTuple", Point, "Point x = 1;", (POINT,)),
    (
        "dataclass",
        Box,
        "Box x = 1;",
        (
            "message Box {\n  Point top_left = 1;\n  repeated double size = 2;\n"
            "  optional string label = 3;\n}",
            POINT,
        ),
    ),
    (
        "nested messages",
        Segment,
        "Segment x = 1;",
        ("message Segment {\n  Point start = 1;\n  Point end = 2;\n}", POINT),
    ),
    ("list[NamedTuple]", list[Point], "repeated Point x = 1;", (POINT,)),
    ("dict[str, NamedTuple]", dict[str, Point], "map<string, Point> x = 1;", (POINT,)),
    ("Optional[int]", Optional[int], "optional int64 x = 1;", ()),  # noqa: UP045
    ("int | None", int | None, "optional int64 x = 1;", ()),
    ("str | None", str | None, "optional string x = 1;", ()),
    ("Optional[np.float32]", Optional[np.float32], "optional float x = 1;", ()),  # noqa: UP045
    ("typing.Union[bytes, None]", typing.Union[bytes, None], "optional bytes x = 1;", ()),  # noqa: UP007
    ("NamedTuple | None", Point | None, "optional Point x = 1;", (POINT,)),
    ("Enum | None", Color | None, "optional Color x = 1;", (COLOR,)),
    ("Enum", Color, "Color x = 1;", (COLOR,)),
    (
        "Enum with str values",
        TrafficLight,
        "TrafficLight x = 1;",
        (
            "enum TrafficLight {\n  TRAFFIC_LIGHT_UNSPECIFIED = 0;\n  TRAFFIC_LIGHT_STOP = 1;\n"
            "  TRAFFIC_LIGHT_CAUTION = 2;\n  TRAFFIC_LIGHT_GO = 3;\n}",
        ),
    ),
    (
        "IntEnum keeps its numbers",
        Priority,
        "Priority x = 1;",
        (
            "enum Priority {\n  PRIORITY_UNSPECIFIED = 0;\n  PRIORITY_LOW = 10;\n"
            "  PRIORITY_HIGH = 20;\n}",
        ),
    ),
    (
        "Enum with acronym name",
        HTTPStatus,
        "HTTPStatus x = 1;",
        (
            "enum HTTPStatus {\n  HTTP_STATUS_UNSPECIFIED = 0;\n  HTTP_STATUS_OK = 200;\n"
            "  HTTP_STATUS_NOT_FOUND = 404;\n}",
        ),
    ),
    (
        "Enum with lower-case members and digits",
        Rgb2Hex,
        "Rgb2Hex x = 1;",
        (
            "enum Rgb2Hex {\n  RGB2_HEX_UNSPECIFIED = 0;\n  RGB2_HEX_RED = 1;\n"
            "  RGB2_HEX_DARK_RED = 2;\n}",
        ),
    ),
    ("list[Enum]", list[Color], "repeated Color x = 1;", (COLOR,)),
    ("dict[str, Enum]", dict[str, Color], "map<string, Color> x = 1;", (COLOR,)),
    ("NDArray[np.uint8]", NDArray[np.uint8], "Tensor x = 1;", TENSOR_DEFS),
    ("np.ndarray", np.ndarray, "Tensor x = 1;", TENSOR_DEFS),
    ("NDArray[Any]", NDArray[Any], "Tensor x = 1;", TENSOR_DEFS),
    ("NDArray", NDArray, "Tensor x = 1;", TENSOR_DEFS),
    ("NDArray[np.complex128]", NDArray[np.complex128], "Tensor x = 1;", TENSOR_DEFS),
    ("NDArray | None", NDArray[np.float32] | None, "optional Tensor x = 1;", TENSOR_DEFS),
    ("list[NDArray]", list[NDArray[np.float32]], "repeated Tensor x = 1;", TENSOR_DEFS),
    ("dict[str, np.ndarray]", dict[str, np.ndarray], "map<string, Tensor> x = 1;", TENSOR_DEFS),
]


@pytest.mark.parametrize(
    ("annotation", "line", "others"),
    [pytest.param(a, line, others, id=row_id) for row_id, a, line, others in ROWS],
)
def test_annotation_renders_as_proto_field(annotation: Any, line: str, others: tuple[str, ...]):
    proto = render_proto(field_model(annotation).schema)

    assert block(proto, "message FRequest") == (
        f"message FRequest {{\n  {line}\n  string tag = 2;\n}}"
    )
    for text in others:
        assert text in proto
    expected = ["FRequest", "FResponse", *(definition_name(t) for t in others)]
    assert sorted(definitions(proto)) == sorted(expected)


@pytest.mark.parametrize(
    ("annotation", "node"),
    [
        pytest.param(int, ScalarType(Scalar.INT64), id="int"),
        pytest.param(np.float32, ScalarType(Scalar.FLOAT, "float32"), id="np.float32"),
        pytest.param(np.uint8, ScalarType(Scalar.UINT32, "uint8"), id="np.uint8"),
        pytest.param(np.bool_, ScalarType(Scalar.BOOL, "bool"), id="np.bool_"),
        pytest.param(NDArray[np.uint8], TensorType("uint8"), id="NDArray[np.uint8]"),
        pytest.param(np.ndarray, TensorType(None), id="np.ndarray"),
        pytest.param(NDArray[Any], TensorType(None), id="NDArray[Any]"),
        pytest.param(NDArray, TensorType(None), id="bare NDArray"),
        pytest.param(int | None, OptionalType(ScalarType(Scalar.INT64)), id="int | None"),
        pytest.param(
            list[list[float]],
            ListType(ListType(ScalarType(Scalar.DOUBLE))),
            id="list[list[float]]",
        ),
        pytest.param(
            dict[np.int32, list[np.float16]],
            MapType(
                ScalarType(Scalar.INT32, "int32"),
                ListType(ScalarType(Scalar.FLOAT, "float16")),
            ),
            id="dict[np.int32, list[np.float16]]",
        ),
    ],
)
def test_annotation_keeps_its_python_meaning_in_the_ir(annotation: Any, node: TypeNode):
    """The IR remembers numpy types and dtypes that the proto text cannot show."""
    schema = field_model(annotation).schema
    assert schema.message("FRequest").fields[0].type == node


def test_tensor_definitions_appear_once_however_often_tensors_are_used():
    schema = field_model(dict[str, list[NDArray[np.float32]]]).schema
    proto = render_proto(schema)
    assert definitions(proto).count("Tensor") == 1
    assert definitions(proto).count("DataType") == 1
    assert "Tensor" not in render_proto(field_model(list[int]).schema)

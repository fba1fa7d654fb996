"""Names that would clash in the generated proto are refused at `Model(...)` time: reserved
and scalar type names, two classes of one name, generated request and wrapper names, enum
values sharing the package scope, and names protobuf cannot spell."""

from __future__ import annotations

import enum
import typing
from typing import Any, NamedTuple

import numpy as np
import pytest

from modelwire.bundle.model import Model
from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.codegen.proto import render_proto
from modelwire.codegen.values import ValueCodec
from modelwire.errors import SchemaError
from tests.codegen import samples
from tests.codegen.annotated import param_model


class Tensor(NamedTuple):
    values: list[float]


class DataType(enum.Enum):
    FLOAT = 1


@pytest.mark.parametrize(
    ("annotation", "name"),
    [
        pytest.param(Tensor, "Tensor", id="Tensor"),
        pytest.param(DataType, "DataType", id="DataType"),
    ],
)
def test_class_named_like_the_shared_tensor_types_is_refused(annotation: Any, name: str):
    with pytest.raises(SchemaError) as info:
        Model(predict=param_model(annotation))
    assert str(info.value) == (
        f"method 'predict', parameter 'x': the name {name!r} is reserved for modelwire's "
        "Tensor type; rename the class"
    )


class Double(NamedTuple):
    value: float


def test_class_named_like_a_scalar_type_is_refused():
    class double(NamedTuple):
        value: float

    with pytest.raises(SchemaError) as info:
        Model(predict=param_model(list[double]))
    assert str(info.value) == (
        "method 'predict', parameter 'x': the name 'double' is a protobuf scalar type; "
        "rename the class"
    )


class Point(NamedTuple):
    x: float


def test_two_classes_with_the_same_name_are_refused():
    def distance(a: Point, b: samples.Point) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(distance=distance)
    assert str(info.value) == (
        "method 'distance', parameter 'b': two different types are named 'Point' "
        "(tests.codegen.test_name_clashes.Point and tests.codegen.samples.Point); "
        "message names must be unique within a model"
    )


def test_two_classes_with_the_same_name_in_different_methods_are_refused():
    def first(a: Point) -> float:
        return 0.0

    def second(a: samples.Point) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(first=first, second=second)
    assert str(info.value) == (
        "method 'second', parameter 'a': two different types are named 'Point' "
        "(tests.codegen.test_name_clashes.Point and tests.codegen.samples.Point); "
        "message names must be unique within a model"
    )


class ClassifyRequest(NamedTuple):
    x: float


def test_class_named_like_a_generated_request_is_refused():
    def classify(a: ClassifyRequest, b: int) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(classify=classify)
    assert str(info.value) == (
        "method 'classify': the generated message 'ClassifyRequest' clashes with a class of "
        "the same name; rename the class"
    )


class ListOfDouble(NamedTuple):
    values: list[int]


def test_class_named_like_a_generated_wrapper_is_refused():
    def predict(a: ListOfDouble, b: list[list[float]]) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict', parameter 'b': the generated wrapper message 'ListOfDouble' "
        "clashes with a class of the same name; rename the class"
    )


def test_class_whose_wrapper_name_collides_with_a_scalar_wrapper_is_refused():
    """`list[list[Double]]` and `list[list[float]]` would share the message `ListOfDouble`."""

    def predict(a: list[list[float]], b: list[list[Double]]) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict', parameter 'b': annotation "
        "'list[list[tests.codegen.test_name_clashes.Double]]' has no protobuf mapping: its "
        "wrapper message 'ListOfDouble' already carries a different type; rename 'Double'"
    )


def test_same_wrapper_for_numpy_and_python_scalars_is_fine():
    """np.float64 and float are both `double` on the wire: one wrapper serves both."""

    def predict(a: list[list[float]], b: dict[str, list[np.float64]]) -> float:
        return 0.0

    schema, binding = Model(predict=predict).named("wrappers", "1.0.0")
    proto = render_proto(schema)
    assert proto[proto.index("message PredictRequest") :] == (
        "message PredictRequest {\n"
        "  repeated ListOfDouble a = 1;\n"
        "  map<string, ListOfDouble> b = 2;\n"
        "}\n"
        "\n"
        "message PredictResponse {\n"
        "  double value = 1;\n"
        "}\n"
        "\n"
        "message ListOfDouble {\n"
        "  repeated double values = 1;\n"
        "}\n"
    )
    # the shared wrapper still gives each parameter its own Python element type
    codec = ValueCodec(schema, message_classes(file_descriptor(schema)), binding)
    raw = codec.method("predict").encode_request(([[1.5]], {"k": [np.float64(2.5)]}), {})
    _, got = codec.method("predict").decode_request(raw)
    assert got == {"a": [[1.5]], "b": {"k": [2.5]}}
    assert type(got["a"][0][0]) is float
    assert type(got["b"]["k"][0]) is np.float64


class Light(enum.Enum):
    RED = 1
    X_GREEN = 2


class LightX(enum.Enum):
    GREEN = 1


def test_enums_whose_value_names_collide_are_refused():
    """Proto enum values live in the package scope: LIGHT_X_GREEN cannot be defined twice."""

    def predict(a: Light, b: LightX) -> int:
        return 0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict', parameter 'b': enums 'Light' and 'LightX' would both define the "
        "proto enum value 'LIGHT_X_GREEN' (enum values share the package scope); rename one "
        "of them"
    )


class Data(enum.Enum):
    TYPE_FLOAT32 = 1


def test_enum_colliding_with_the_tensor_data_type_is_refused_only_beside_tensors():
    def plain(a: Data) -> int:
        return 0

    def with_tensor(a: Data, b: np.ndarray) -> int:
        return 0

    Model(plain=plain)
    with pytest.raises(SchemaError) as info:
        Model(with_tensor=with_tensor)
    assert str(info.value) == (
        "method 'with_tensor', parameter 'a': enums 'DataType' and 'Data' would both define "
        "the proto enum value 'DATA_TYPE_FLOAT32' (enum values share the package scope); "
        "rename one of them"
    )


Cafe = typing.NamedTuple("Café", [("x", float)])  # noqa: UP014
Menu = typing.NamedTuple("Menu", [("crème", float)])  # noqa: UP014


def test_non_ascii_names_are_refused():
    """Python identifiers may be non-ASCII; protobuf names may not."""

    def order(prix: float, menu: Menu) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=param_model(Cafe))
    assert str(info.value) == (
        "method 'predict', parameter 'x': class name 'Café' is not a valid protobuf name "
        "(ASCII letters, digits and '_'); rename it"
    )
    with pytest.raises(SchemaError) as info:
        Model(order=order)
    assert str(info.value) == (
        "method 'order', parameter 'menu': field 'Menu.crème' is not a valid protobuf name "
        "(ASCII letters, digits and '_'); rename it"
    )

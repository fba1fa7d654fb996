"""Annotations without a protobuf mapping are refused at `Model(...)` time, with a message that
names the method, the parameter (or field) and the annotation."""

from __future__ import annotations

import collections
import dataclasses
import enum
import typing
from collections.abc import Callable
from typing import Any, NamedTuple, Optional

import numpy as np
import pytest

from modelwire.bundle.model import Model
from modelwire.errors import ModelwireError, SchemaError
from tests.codegen import samples

SUPPORTED = (
    "supported are int, float, bool, str, bytes, numpy scalars, NDArray, list, dict, "
    "Optional, Enum, NamedTuple and dataclasses"
)


def param_model(annotation: Any) -> Callable[..., Any]:
    """`predict(x: annotation) -> int`."""

    def predict(x):  # type: ignore[no-untyped-def]
        return 0

    predict.__annotations__ = {"x": annotation, "return": int}
    return predict


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        pytest.param(
            tuple[int, int],
            "method 'predict', parameter 'x': annotation 'tuple[int, int]' has no protobuf "
            f"mapping: {SUPPORTED}",
            id="tuple",
        ),
        pytest.param(
            Any,
            f"method 'predict', parameter 'x': annotation 'Any' has no protobuf mapping: "
            f"{SUPPORTED}",
            id="Any",
        ),
        pytest.param(
            typing.Union[int, str],  # noqa: UP007
            "method 'predict', parameter 'x': annotation 'Union[int, str]' has no protobuf "
            "mapping: unions other than Optional[T] are not supported",
            id="Union",
        ),
        pytest.param(
            int | str | None,
            "method 'predict', parameter 'x': annotation 'int | str | None' has no protobuf "
            "mapping: unions other than Optional[T] are not supported",
            id="union with None",
        ),
        pytest.param(
            list[int | None],
            "method 'predict', parameter 'x': annotation 'int | None' has no protobuf "
            "mapping: protobuf has no repeated or map value optional; use the element type "
            "or a NamedTuple field that is Optional",
            id="list[int | None]",
        ),
        pytest.param(
            dict[str, Optional[float]],  # noqa: UP045
            "method 'predict', parameter 'x': annotation 'Optional[float]' has no protobuf "
            "mapping: protobuf has no repeated or map value optional; use the element type "
            "or a NamedTuple field that is Optional",
            id="dict[str, Optional[float]]",
        ),
        pytest.param(
            Optional[list[int]],  # noqa: UP045
            "method 'predict', parameter 'x': annotation 'Optional[list[int]]' has no protobuf "
            "mapping: repeated and map fields have no presence in proto3; use the container "
            "itself (empty for none)",
            id="Optional[list[int]]",
        ),
        pytest.param(
            dict[str, int] | None,
            "method 'predict', parameter 'x': annotation 'dict[str, int] | None' has no "
            "protobuf mapping: repeated and map fields have no presence in proto3; use the "
            "container itself (empty for none)",
            id="dict | None",
        ),
        pytest.param(
            list,
            "method 'predict', parameter 'x': annotation 'list' has no protobuf mapping: "
            "a bare list has no element type, e.g. list[...]",
            id="bare list",
        ),
        pytest.param(
            dict,
            "method 'predict', parameter 'x': annotation 'dict' has no protobuf mapping: "
            "a bare dict has no element type, e.g. dict[...]",
            id="bare dict",
        ),
        pytest.param(
            typing.List,  # noqa: UP006
            "method 'predict', parameter 'x': annotation 'List' has no protobuf mapping: "
            "a list needs an element type, e.g. list[float]",
            id="bare typing.List",
        ),
        pytest.param(
            dict[float, int],
            "method 'predict', parameter 'x': annotation 'dict[float, int]' has no protobuf "
            "mapping: map keys must be str, int or bool",
            id="dict[float, int]",
        ),
        pytest.param(
            dict[bytes, int],
            "method 'predict', parameter 'x': annotation 'dict[bytes, int]' has no protobuf "
            "mapping: map keys must be str, int or bool",
            id="dict[bytes, int]",
        ),
        pytest.param(
            set[int],
            f"method 'predict', parameter 'x': annotation 'set[int]' has no protobuf mapping: "
            f"{SUPPORTED}",
            id="set",
        ),
        pytest.param(
            complex,
            f"method 'predict', parameter 'x': annotation 'complex' has no protobuf mapping: "
            f"{SUPPORTED}",
            id="complex",
        ),
        pytest.param(
            np.datetime64,
            f"method 'predict', parameter 'x': annotation 'datetime64' has no protobuf "
            f"mapping: {SUPPORTED}",
            id="np.datetime64",
        ),
        pytest.param(
            np.ndarray[Any, np.dtype[np.str_]],
            "method 'predict', parameter 'x': annotation 'np.ndarray[Any, np.dtype[np.str_]]' "
            "has no protobuf mapping: dtype str_ cannot travel in a Tensor",
            id="NDArray[np.str_]",
        ),
        pytest.param(
            list[tuple[int, int]],
            "method 'predict', parameter 'x': annotation 'tuple[int, int]' has no protobuf "
            f"mapping: {SUPPORTED}",
            id="nested tuple",
        ),
        pytest.param(
            "Undefined",
            "method 'predict': an annotation could not be resolved (name 'Undefined' is not "
            "defined); define the types at module level",
            id="unresolvable string",
        ),
    ],
)
def test_unsupported_parameter_annotation(annotation: Any, message: str):
    with pytest.raises(SchemaError) as info:
        Model(predict=param_model(annotation))
    assert str(info.value) == message


def test_unsupported_annotation_error_carries_annotation_and_place():
    with pytest.raises(SchemaError) as info:
        Model(predict=param_model(dict[float, int]))
    assert info.value.annotation == "dict[float, int]"
    assert info.value.where == "method 'predict', parameter 'x'"


class Scores(NamedTuple):
    name: str
    scores: list[int | None]


@dataclasses.dataclass
class Holder:
    pair: tuple[int, int]


class Outer(NamedTuple):
    inner: Holder


def test_bad_field_of_flattened_namedtuple_names_the_field():
    def rank(s: Scores) -> int:
        return 0

    with pytest.raises(SchemaError) as info:
        Model(rank=rank)
    assert str(info.value) == (
        "method 'rank', parameter 's', field 'Scores.scores': annotation 'int | None' has no "
        "protobuf mapping: protobuf has no repeated or map value optional; use the element "
        "type or a NamedTuple field that is Optional"
    )


def test_bad_field_of_nested_dataclass_names_the_path():
    def unpack(a: int, o: Outer) -> int:
        return 0

    with pytest.raises(SchemaError) as info:
        Model(unpack=unpack)
    assert str(info.value) == (
        "method 'unpack', parameter 'o', field 'Outer.inner', field 'Holder.pair': annotation "
        f"'tuple[int, int]' has no protobuf mapping: {SUPPORTED}"
    )


def test_bad_return_annotation_names_the_return_value():
    def split(text: str) -> tuple[str, str]:
        return text, text

    with pytest.raises(SchemaError) as info:
        Model(split=split)
    assert str(info.value) == (
        "method 'split', return value: annotation 'tuple[str, str]' has no protobuf "
        f"mapping: {SUPPORTED}"
    )


def test_missing_parameter_annotation():
    def predict(x, y: int) -> int:  # type: ignore[no-untyped-def]
        return 0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == "method 'predict': parameter 'x' has no type annotation"


def test_missing_return_annotation():
    def predict(x: int):  # type: ignore[no-untyped-def]
        return 0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict': the return value has no type annotation "
        "(write '-> None' if it returns nothing)"
    )


Untyped = collections.namedtuple("Untyped", ["a", "b"])  # no annotations


def test_plain_namedtuple_without_annotations_is_refused():
    with pytest.raises(SchemaError) as info:
        Model(predict=param_model(Untyped))
    assert str(info.value) == (
        "method 'predict', parameter 'x': field 'a' of Untyped has no type annotation"
    )


def test_star_args_are_refused():
    def predict(*rows: float) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict': parameter 'rows': *args and **kwargs cannot be mapped to a message"
    )


def test_star_kwargs_are_refused():
    def predict(x: int, **options: str) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict': parameter 'options': *args and **kwargs cannot be mapped to a message"
    )


def test_positional_only_parameter_is_refused():
    def predict(x: int, /) -> float:
        return 0.0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict': parameter 'x' is positional-only; requests set fields by name"
    )


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
        "(tests.codegen.test_schema_errors.Point and tests.codegen.samples.Point); "
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
        "(tests.codegen.test_schema_errors.Point and tests.codegen.samples.Point); "
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
        "'list[list[tests.codegen.test_schema_errors.Double]]' has no protobuf mapping: its "
        "wrapper message 'ListOfDouble' already carries a different type; rename 'Double'"
    )


def test_same_wrapper_for_numpy_and_python_scalars_is_fine():
    """np.float64 and float are both `double` on the wire: one wrapper serves both."""

    def predict(a: list[list[float]], b: dict[str, list[np.float64]]) -> float:
        return 0.0

    Model(predict=predict)


class Status(enum.Enum):
    UNSPECIFIED = 0
    READY = 1


class Shade(enum.Enum):
    LIGHT = 1
    light = 2


class Nothing(enum.Enum):
    pass


@pytest.mark.parametrize(
    ("annotation", "message"),
    [
        pytest.param(
            Status,
            "method 'predict', parameter 'x': enum member 'Status.UNSPECIFIED' clashes with "
            "the zero value 'STATUS_UNSPECIFIED' that modelwire adds; rename the member",
            id="member UNSPECIFIED",
        ),
        pytest.param(
            Shade,
            "method 'predict', parameter 'x': the members of enum 'Shade' must differ in more "
            "than letter case",
            id="members differ in case only",
        ),
        pytest.param(
            Nothing,
            "method 'predict', parameter 'x': enum 'Nothing' needs at least one member",
            id="no members",
        ),
    ],
)
def test_enum_that_cannot_become_a_proto_enum(annotation: Any, message: str):
    with pytest.raises(SchemaError) as info:
        Model(predict=param_model(annotation))
    assert str(info.value) == message


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


def test_method_names_must_be_identifiers_and_map_to_distinct_rpcs():
    def f(x: int) -> int:
        return x

    with pytest.raises(SchemaError) as info:
        Model(**{"predict-proba": f})
    assert str(info.value) == "method name 'predict-proba' is not a Python identifier"
    with pytest.raises(SchemaError) as info:
        Model(predict_proba=f, predictProba=f)
    assert str(info.value) == (
        "methods 'predict_proba' and 'predictProba' both map to rpc 'PredictProba'"
    )


def test_schema_error_is_a_type_error_and_a_modelwire_error():
    with pytest.raises(TypeError) as info:
        Model(predict=param_model(Any))
    assert isinstance(info.value, SchemaError)
    assert isinstance(info.value, ModelwireError)


def test_schema_error_is_raised_when_the_model_is_built():
    """Not later, when it is dumped or served: `Model(...)` itself fails."""
    calls = []

    def predict(x: tuple[int, ...]) -> int:
        calls.append(x)
        return 0

    with pytest.raises(SchemaError):
        Model(predict=predict)
    assert calls == []


def test_model_needs_a_method():
    with pytest.raises(TypeError) as info:
        Model()
    assert str(info.value) == "Model() needs at least one method, e.g. Model(classify=fn)"
    assert not isinstance(info.value, SchemaError)

"""Annotations without a protobuf mapping are refused at `Model(...)` time, with a message that
names the method, the parameter (or field) and the annotation."""

from __future__ import annotations

import collections
import dataclasses
import enum
import typing
from typing import Any, NamedTuple, Optional

import numpy as np
import pytest

from modelwire.bundle.model import Model
from modelwire.errors import ModelwireError, SchemaError
from tests.codegen.annotated import param_model

SUPPORTED = (
    "supported are int, float, bool, str, bytes, numpy scalars, NDArray, list, dict, "
    "Optional, Enum, NamedTuple and dataclasses"
)


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


Untyped = collections.namedtuple("Untyped", ["a", "b"])  # no annotations


def test_plain_namedtuple_without_annotations_is_refused():
    with pytest.raises(SchemaError) as info:
        Model(predict=param_model(Untyped))
    assert str(info.value) == (
        "method 'predict', parameter 'x': field 'a' of Untyped has no type annotation"
    )


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


def test_schema_error_is_a_type_error_and_a_modelwire_error():
    with pytest.raises(TypeError) as info:
        Model(predict=param_model(Any))
    assert type(info.value) is SchemaError
    assert isinstance(info.value, ModelwireError)
    assert str(info.value) == (
        f"method 'predict', parameter 'x': annotation 'Any' has no protobuf mapping: {SUPPORTED}"
    )


def test_schema_error_is_raised_when_the_model_is_built():
    """Not later, when it is dumped or served: `Model(...)` itself fails."""
    calls = []

    def predict(x: tuple[int, ...]) -> int:
        calls.append(x)
        return 0

    with pytest.raises(SchemaError) as info:
        Model(predict=predict)
    assert str(info.value) == (
        "method 'predict', parameter 'x': annotation 'tuple[int, ...]' has no protobuf "
        f"mapping: {SUPPORTED}"
    )
    assert (info.value.annotation, info.value.where) == (
        "tuple[int, ...]",
        "method 'predict', parameter 'x'",
    )
    assert calls == []

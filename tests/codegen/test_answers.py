"""Comparing an answer with the recorded one: the first difference by field path, floats
within the documented tolerance, tensors by dtype, shape and values."""

from __future__ import annotations

import enum
import math
from typing import Any, NamedTuple

import numpy as np
import pytest
from numpy.typing import NDArray

from modelwire.bundle.model import Model
from modelwire.codegen.answers import Difference, Tolerance, compare, compare_response
from modelwire.codegen.schema import MessageType


class Kind(enum.Enum):
    CAT = 1
    DOG = 2


class Box(NamedTuple):
    label: Kind
    score: float


class Answer(NamedTuple):
    total: float
    half: np.float32
    count: int
    ids: list[int]
    boxes: list[Box]
    by_name: dict[str, float]
    image: NDArray[np.float32]
    mask: NDArray[np.int64]
    note: str | None


def detect(x: float) -> Answer:
    raise NotImplementedError


def area(x: float) -> float:
    raise NotImplementedError


SCHEMA, _ = Model(detect=detect, area=area).named("m", "1.0.0")
T = MessageType("DetectResponse")


def answer(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "total": 1.0,
        "half": np.float32(0.5),
        "count": 3,
        "ids": [1, 2],
        "boxes": [{"label": Kind.CAT, "score": 0.25}, {"label": Kind.DOG, "score": 0.75}],
        "by_name": {"a": 1.0, "b": 2.0},
        "image": np.zeros((2, 3), dtype=np.float32),
        "mask": np.arange(4, dtype=np.int64),
        "note": None,
    }
    return {**base, **changes}


def _image(value: float, at: tuple[int, int] = (1, 2)) -> np.ndarray:
    image = np.zeros((2, 3), dtype=np.float32)
    image[at] = value
    return image


@pytest.mark.parametrize(
    ("changes", "difference"),
    [
        pytest.param({}, None, id="identical"),
        pytest.param({"total": 1.0 + 5e-7}, None, id="double within rel 1e-6"),
        pytest.param(
            {"total": 1.00001}, Difference("total", "1.0", "1.00001"), id="double past rel 1e-6"
        ),
        pytest.param({"half": np.float32(0.50002)}, None, id="float32 within rel 1e-4"),
        pytest.param(
            {"half": np.float32(0.5002)},
            Difference("half", "0.5", "0.5001999735832214"),
            id="float32 past rel 1e-4",
        ),
        pytest.param({"count": 4}, Difference("count", "3", "4"), id="integers exactly"),
        pytest.param({"ids": [1]}, Difference("ids", "2 items", "1 items"), id="list length"),
        pytest.param({"ids": [1, 5]}, Difference("ids[1]", "2", "5"), id="list item"),
        pytest.param(
            {"boxes": [{"label": Kind.CAT, "score": 0.25}, {"label": Kind.CAT, "score": 0.75}]},
            Difference("boxes[1].label", "'DOG'", "'CAT'"),
            id="enum in a nested message",
        ),
        pytest.param(
            {"by_name": {"a": 1.0}},
            Difference("by_name['b']", "2.0", "no such key"),
            id="map key missing",
        ),
        pytest.param(
            {"by_name": {"a": 1.0, "b": 2.0, "c": 3.0}},
            Difference("by_name['c']", "no such key", "3.0"),
            id="map key extra",
        ),
        pytest.param(
            {"by_name": {"a": 1.0, "b": 2.5}},
            Difference("by_name['b']", "2.0", "2.5"),
            id="map value",
        ),
        pytest.param(
            {"image": np.zeros((2, 3), dtype=np.float64)},
            Difference("image", "dtype float32", "dtype float64"),
            id="tensor dtype",
        ),
        pytest.param(
            {"image": np.zeros((3, 2), dtype=np.float32)},
            Difference("image", "shape (2, 3)", "shape (3, 2)"),
            id="tensor shape",
        ),
        pytest.param({"image": _image(1e-7)}, None, id="float32 tensor within abs 1e-6"),
        pytest.param(
            {"image": _image(0.5)}, Difference("image[1, 2]", "0.0", "0.5"), id="tensor value"
        ),
        pytest.param(
            {"mask": np.array([0, 1, 7, 9])},
            Difference("mask[2]", "2", "7", more=1),
            id="int tensor exactly, the first of two",
        ),
        pytest.param({"note": "x"}, Difference("note", "None", "'x'"), id="optional set vs unset"),
    ],
)
def test_the_first_difference_names_its_field_path(
    changes: dict[str, Any], difference: Difference | None
) -> None:
    assert compare(SCHEMA, T, answer(), answer(**changes)) == difference


def test_nan_equals_nan_in_scalars_and_tensors() -> None:
    image = np.full((2, 3), np.nan, dtype=np.float32)
    want = answer(total=math.nan, image=image)
    assert compare(SCHEMA, T, want, answer(total=math.nan, image=image.copy())) is None
    assert compare(SCHEMA, T, want, answer(total=1.0, image=image)) == Difference(
        "total", "nan", "1.0"
    )


def test_a_stricter_tolerance_is_applied() -> None:
    strict = Tolerance(rel=0.0, abs=0.0)
    assert compare(SCHEMA, T, answer(), answer(total=1.0 + 5e-7), strict) == Difference(
        "total", "1.0", "1.0000005"
    )


def test_a_value_response_is_named_value() -> None:
    method = SCHEMA.method("area")
    assert compare_response(SCHEMA, method, 2.0, 2.0) is None
    assert compare_response(SCHEMA, method, 2.0, 3.0) == Difference("value", "2.0", "3.0")


def test_a_difference_reads_as_one_line() -> None:
    assert str(Difference("mask[2]", "2", "7", more=1)) == (
        "mask[2]: expected 2, got 7 (1 more elements differ)"
    )
    assert str(Difference("", "1", "2")) == "the answer: expected 1, got 2"


def test_long_values_are_clipped() -> None:
    found = compare(SCHEMA, T, answer(note="a" * 200), answer(note="b"))
    assert found is not None
    assert found.expected == "'" + "a" * 56 + "..."

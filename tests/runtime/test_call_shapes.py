"""One table of call shapes, run through `load()` (in-process) and `connect()` (a real
server): both bind arguments with the one binder, so both give the same answers and
the same errors."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelwire.bundle import load
from tests.fixtures.models.echo import Color, Point, Record

AddArgs = collections.namedtuple("AddArgs", "a b")


@dataclass
class AddFields:
    a: float
    b: float


RECORD = Record("a", [1.0, 2.5], Color.GREEN, Point(1, 2), None)
FIELDS: dict[str, Any] = {
    "name": "a",
    "scores": [1.0, 2.5],
    "color": "GREEN",
    "where": {"x": 1, "y": 2},
    "note": None,
}


def _plain(v: Any) -> Any:
    """A value as plain data: the model's classes and connect()'s namedtuples compare."""
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return {k: _plain(x) for k, x in zip(v._fields, v, strict=True)}
    if hasattr(v, "__dataclass_fields__"):
        return {k: _plain(getattr(v, k)) for k in v.__dataclass_fields__}
    if hasattr(v, "name") and hasattr(v, "value") and type(v).__module__ != "builtins":
        return v.name  # an enum member
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


SHAPES = [
    pytest.param(lambda m: m.add(1.5, 2), 3.5, id="positional"),
    pytest.param(lambda m: m.add(1.5, b=2), 3.5, id="positional-and-keyword"),
    pytest.param(lambda m: m.add(b=1, a=0.25), 1.25, id="keywords"),
    pytest.param(lambda m: m.add({"a": 1, "b": 2}), 3.0, id="one-dict"),
    pytest.param(lambda m: m.add(AddArgs(1, 2)), 3.0, id="one-namedtuple"),
    pytest.param(lambda m: m.add(AddFields(1, 2)), 3.0, id="one-dataclass"),
    pytest.param(lambda m: m.add(1), 1.0, id="missing-number-is-0"),
    pytest.param(lambda m: m.echo_record(RECORD), _plain(RECORD), id="message-instance"),
    pytest.param(lambda m: m.echo_record(**FIELDS), _plain(RECORD), id="message-keywords"),
    pytest.param(lambda m: m.echo_record(FIELDS), _plain(RECORD), id="message-dict"),
    pytest.param(
        lambda m: m.echo_record(*FIELDS.values()), _plain(RECORD), id="message-positional"
    ),
    pytest.param(
        lambda m: m.echo_tensor(x=np.arange(3, dtype=np.float32)), [0.0, 1.0, 2.0], id="tensor"
    ),
]

ERRORS = [
    pytest.param(lambda m: m.add(1, 2, 3), "add() takes 2 arguments (a, b), 3 given", id="extra"),
    pytest.param(
        lambda m: m.add(1, c=2),
        "add() got an unexpected argument 'c'; fields are a, b",
        id="unknown-keyword",
    ),
    pytest.param(lambda m: m.add(1, a=2), "add() got multiple values for 'a'", id="given-twice"),
    pytest.param(lambda m: m.add("one", 2), "a: expected a number, got str 'one'", id="wrong"),
    pytest.param(
        lambda m: m.echo_record(**{**FIELDS, "where": None}),
        "echo_record() argument 'where' is None, but it is not Optional",
        id="none-message",
    ),
    pytest.param(
        lambda m: m.echo_record(name="a", scores=[], color="RED"),
        "echo_record() missing argument 'where' (a Point message has no default)",
        id="missing-message",
    ),
    pytest.param(
        lambda m: m.echo_record({k: v for k, v in FIELDS.items() if k != "color"}),
        "echo_record() missing argument 'color' (the enum Color has no default)",
        id="missing-enum",
    ),
    pytest.param(
        lambda m: m.echo_tensor(),
        "echo_tensor() missing argument 'x' (a Tensor has no default)",
        id="missing-tensor",
    ),
]


@pytest.fixture(params=["load", "connect"])
def echo_model(
    request: pytest.FixtureRequest,
    bundle: Callable[[str], Path],
    shared_server: Callable[..., Any],
) -> Any:
    if request.param == "load":
        return load(bundle("echo"))
    return shared_server("echo", "in-process", "sync").client()


@pytest.mark.parametrize(("call", "expected"), SHAPES)
def test_every_call_shape_gives_the_same_answer(echo_model, call, expected):
    assert _plain(call(echo_model)) == expected


@pytest.mark.parametrize(("call", "message"), ERRORS)
def test_a_wrong_missing_or_extra_argument_is_the_same_type_error(echo_model, call, message):
    with pytest.raises(TypeError) as info:
        call(echo_model)
    assert str(info.value) == message


def test_a_loaded_method_gets_what_the_served_one_gets(bundle):
    """Not the caller's objects: the model's own classes, decoded from the request."""
    got = load(bundle("echo")).echo_record(FIELDS)
    assert type(got) is Record and type(got.where) is Point and got.color is Color.GREEN
    array = load(bundle("echo")).echo_tensor(np.arange(3, dtype=np.float32))
    assert not array.flags.writeable  # a view of the request, as when served

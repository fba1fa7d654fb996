"""`@modelwire.batched`: a batch function with the wire contract of the per-request method.

The annotations are checked at `Model(...)` time, naming the method; the schema (and so the
proto) is exactly the one of the same method written per request; `load()` gives both the
per-request call and the batch function. (This module's annotations are strings, PEP 563.)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import cloudpickle
import pytest

import modelwire
from modelwire import Model, batched
from modelwire.bundle.batching import BatchedMethod, BatchPolicy
from modelwire.codegen.proto import render_proto
from modelwire.errors import SchemaError


class Flower(NamedTuple):
    petal: float
    name: str


class Species(NamedTuple):
    label: int


def classify_one(flower: Flower) -> Species:
    """The species of each flower."""
    return Species(int(flower.petal > 2))


@batched(max_batch_size=16, max_delay_ms=2.5)
def classify(flowers: list[Flower]) -> list[Species]:
    """The species of each flower."""
    return [Species(int(f.petal > 2)) for f in flowers]


def score_one(a: float, b: list[int]) -> str:
    return f"{a:g}:{sum(b)}"


@batched
def score(a: list[float], b: list[list[int]]) -> list[str]:
    return [f"{x:g}:{sum(y)}" for x, y in zip(a, b, strict=True)]


def batched_model() -> Model:
    return Model(classify=classify, score=score)


def test_the_contract_is_the_per_request_methods():
    """Batching is invisible on the wire: the same proto as the methods written per request."""
    per_request = Model(classify=classify_one, score=score_one)
    mine, _ = batched_model().named("flowers", "1.0.0")
    theirs, _ = per_request.named("flowers", "1.0.0")
    assert mine == theirs
    assert render_proto(mine) == render_proto(theirs)
    assert "rpc Classify(ClassifyRequest) returns (ClassifyResponse);" in render_proto(mine)


def test_the_methods_are_the_per_request_calls_and_keep_the_batch_function():
    model = batched_model()
    assert model.classify(Flower(3.0, "a")) == Species(1)
    assert model.classify.batch([Flower(1.0, "a"), Flower(3.0, "b")]) == [Species(0), Species(1)]
    assert model.score(1.5, b=[1, 2]) == "1.5:3"
    assert model.score.batch([1.0, 2.0], [[1], [2, 3]]) == ["1:1", "2:5"]
    assert model.methods["classify"].policy == BatchPolicy(max_batch_size=16, max_delay_ms=2.5)
    assert model.methods["score"].policy == BatchPolicy(max_batch_size=64, max_delay_ms=0)
    assert model.classify.__doc__ == "The species of each flower."
    assert repr(model.classify) == "batched(classify, max_batch_size=16, max_delay_ms=2.5)"


def test_load_gives_the_per_request_call_and_the_batch_function(tmp_path):
    loaded = modelwire.load(modelwire.dump(batched_model(), "flowers", tmp_path / "flowers"))
    assert loaded.classify(Flower(3.0, "a")) == Species(1)
    assert loaded.classify.batch([Flower(1.0, "a"), Flower(3.0, "b")]) == [Species(0), Species(1)]
    method = loaded.model.methods["classify"]
    assert isinstance(method, BatchedMethod)
    assert method.policy == BatchPolicy(16, 2.5)
    assert loaded.schema == batched_model().named("flowers", "1.0.0")[0]


def test_a_pickled_model_keeps_its_batched_methods():
    again = cloudpickle.loads(cloudpickle.dumps(batched_model()))
    assert again.schema == batched_model().schema
    assert again.methods["score"].policy == BatchPolicy()
    assert again.score(2.0, [5]) == "2:5"


def test_a_per_request_call_whose_batch_function_miscounts_is_a_value_error():
    @batched
    def none_back(xs: list[int]) -> list[int]:
        return []

    with pytest.raises(ValueError) as info:
        none_back(1)
    assert str(info.value) == "none_back: the batch function returned 0 results for 1 request"


def test_a_per_request_call_whose_batch_function_returns_no_list_is_a_type_error():
    @batched
    def number(xs: list[int]) -> list[int]:
        return 3  # type: ignore[return-value]

    with pytest.raises(TypeError) as info:
        number(1)
    assert str(info.value) == "number: the batch function returned int, not a list of results"


def _flower_to_species(flower: Flower) -> list[Species]:
    return []


def _flowers_to_species(flowers: list[Flower]) -> Species:
    return Species(0)


def _nothing() -> list[Species]:
    return []


def _two(flowers: list[Flower], k: int) -> list[Species]:
    return []


def _bare(flowers: list) -> list[Species]:  # type: ignore[type-arg]
    return []


def _unmappable(xs: list[tuple[int, int]]) -> list[int]:
    return []


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        pytest.param(
            _flower_to_species,
            "method 'classify': parameter 'flower' of a @batched method must be annotated "
            "list[T], one T per request; got 'Flower'",
            id="parameter-not-a-list",
        ),
        pytest.param(
            _flowers_to_species,
            "method 'classify': the return value of a @batched method must be annotated "
            "list[R], one R per request, in order; got 'Species'",
            id="return-not-a-list",
        ),
        pytest.param(
            _nothing,
            "method 'classify': a @batched method needs a parameter annotated list[T], one T "
            "per request",
            id="no-parameter",
        ),
        pytest.param(
            _two,
            "method 'classify': parameter 'k' of a @batched method must be annotated "
            "list[T], one T per request; got 'int'",
            id="one-of-two-not-a-list",
        ),
        pytest.param(
            _bare,
            "method 'classify': parameter 'flowers' of a @batched method must be annotated "
            "list[T], one T per request; got 'list'",
            id="bare-list",
        ),
        pytest.param(
            _unmappable,
            "method 'classify', parameter 'xs': annotation 'tuple[int, int]' has no protobuf "
            "mapping: supported are int, float, bool, str, bytes, numpy scalars, NDArray, list, "
            "dict, Optional, Enum, NamedTuple and dataclasses",
            id="item-type-unmappable",
        ),
    ],
)
def test_wrong_annotations_are_a_schema_error_at_model_time_naming_the_method(fn, message):
    method = batched(fn)  # the decorator itself accepts any function
    with pytest.raises(SchemaError) as info:
        Model(classify=method)
    assert str(info.value) == message


def test_an_unannotated_parameter_gets_the_usual_message():
    def f(xs):  # type: ignore[no-untyped-def]
        return xs

    with pytest.raises(SchemaError) as info:
        Model(f=batched(f))
    assert str(info.value) == "method 'f': parameter 'xs' has no type annotation"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_batch_size": 0}, ValueError, "max_batch_size must be at least 1, got 0"),
        ({"max_batch_size": 2.5}, TypeError, "max_batch_size must be an integer, got 2.5"),
        ({"max_batch_size": True}, TypeError, "max_batch_size must be an integer, got True"),
        ({"max_delay_ms": -1}, ValueError, "max_delay_ms must be a finite number >= 0, got -1"),
        (
            {"max_delay_ms": math.inf},
            ValueError,
            "max_delay_ms must be a finite number >= 0, got inf",
        ),
        (
            {"max_delay_ms": "5"},
            TypeError,
            "max_delay_ms must be a number of milliseconds, got '5'",
        ),
    ],
)
def test_a_bad_policy_is_refused_where_it_is_written(kwargs, error, message):
    with pytest.raises(error) as info:
        batched(**kwargs)
    assert str(info.value) == message


def test_the_decorator_takes_functions_once():
    with pytest.raises(TypeError) as info:
        batched(42)  # type: ignore[call-overload]
    assert str(info.value) == "@batched decorates a function, got 42"
    with pytest.raises(TypeError) as info:
        batched(classify)
    assert str(info.value) == "'classify' is @batched already"


def test_the_policy_says_itself_for_the_log():
    assert (
        BatchPolicy(64).describe() == "batches of up to 64 calls, run as soon as the model is free"
    )
    assert (
        BatchPolicy(8, 2.5).describe() == "batches of up to 8 calls, waiting up to 2.5 ms for more"
    )

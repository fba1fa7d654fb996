"""How a Batcher fails a batch's calls: only the requests that make the model raise, or
every call of a batch whose results do not match it, each with its own error."""

from __future__ import annotations

from typing import Any

import pytest

from modelwire.bundle.batching import BatchPolicy
from modelwire.errors import BadResult, ModelFailed
from modelwire.runtime.batching import Batcher
from tests.runtime.batcher_kit import Gated, pool, queue_calls

pytestmark = pytest.mark.timeout(60)

__all__ = ["pool"]  # the fixture, used by name


def test_only_the_requests_that_make_the_model_raise_fail(pool):
    """Bisection: the failing batch runs again in halves, down to the culprits alone."""
    fn = Gated(1, fail=lambda x: x < 0)
    batcher = Batcher("double", fn, BatchPolicy(8))
    first = pool.submit(batcher.call, 0)
    fn.wait_started(1)
    items = [1, -2, 3, 4, -5, 6, 7, 8]
    calls = queue_calls(pool, batcher, items)
    fn.release(1)
    assert first.result(10) == 0
    for item, call in zip(items, calls, strict=True):
        if item < 0:
            with pytest.raises(ModelFailed) as info:
                call.result(10)
            assert str(info.value) == f"double: the model raised ValueError: bad item {item}"
            assert isinstance(info.value.cause, ValueError)
        else:
            assert call.result(10) == 2 * item
    assert fn.runs[1:] == [
        [1, -2, 3, 4, -5, 6, 7, 8],
        [1, -2, 3, 4],
        [1, -2],
        [1],
        [-2],
        [3, 4],
        [-5, 6, 7, 8],
        [-5, 6],
        [-5],
        [6],
        [7, 8],
    ]


def test_a_model_calling_sys_exit_fails_that_call_alone():
    def fn(items: list[Any]) -> list[Any]:
        raise SystemExit(3)

    batcher = Batcher("exits", fn, BatchPolicy(8))
    with pytest.raises(ModelFailed) as info:
        batcher.call(1)
    assert isinstance(info.value.cause, SystemExit)


def test_the_wrong_number_of_results_fails_every_call_of_the_batch(pool):
    fn = Gated(1)
    short = Batcher("drop_one", lambda items: fn(items)[1:], BatchPolicy(8))
    first = pool.submit(short.call, 1)
    fn.wait_started(1)
    calls = queue_calls(pool, short, [2, 3, 4])
    fn.release(1)
    with pytest.raises(BadResult) as info:
        first.result(10)
    assert str(info.value) == (
        "drop_one: the model returned a value that does not fit its declared response: "
        "the batch function returned 0 results for 1 request"
    )
    for call in calls:
        with pytest.raises(BadResult) as info:
            call.result(10)
        assert str(info.value) == (
            "drop_one: the model returned a value that does not fit its declared response: "
            "the batch function returned 2 results for 3 requests"
        )
    assert fn.runs == [[1], [2, 3, 4]], "a wrong count is not retried"


def test_a_result_that_is_no_list_fails_the_batch():
    batcher = Batcher("f", lambda items: 7, BatchPolicy(8))
    with pytest.raises(BadResult) as info:
        batcher.call(1)
    assert str(info.value) == (
        "f: the model returned a value that does not fit its declared response: "
        "the batch function returned int, not a list of results"
    )


def test_any_iterable_of_results_will_do():
    batcher = Batcher("f", lambda items: (2 * x for x in items), BatchPolicy(8))
    assert batcher.call(4) == 8


def test_an_exception_while_the_results_are_iterated_is_the_models():
    def fn(items: list[Any]) -> Any:
        return (1 // x for x in items)

    batcher = Batcher("inverse", fn, BatchPolicy(8))
    with pytest.raises(ModelFailed) as info:
        batcher.call(0)
    assert isinstance(info.value.cause, ZeroDivisionError)
    assert batcher.call(1) == 1

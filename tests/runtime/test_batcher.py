"""The batch policy itself (`modelwire.runtime.batching.Batcher`), driven by real threads and
event loops: who runs a batch, what goes in it, and what a call meets while it waits.

Batches are held open with events instead of timing: `Gated` blocks chosen runs of the batch
function until the test releases them, and calls are queued one after the other (waiting
for `Batcher.queued` to count each), so the order in a batch is known.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from modelwire.bundle.batching import BatchPolicy
from modelwire.errors import BadResult, Cancelled, DeadlineExceeded, ModelFailed
from modelwire.runtime import batching
from modelwire.runtime.batching import Batcher, CallState

pytestmark = pytest.mark.timeout(60)


class Gated:
    """A batch function that doubles its items, records each run (items and thread), and
    blocks the runs numbered in `gated` (1 = the first) until `release(n)`."""

    def __init__(self, *gated: int, fail: Callable[[Any], bool] = lambda x: False) -> None:
        self.runs: list[list[Any]] = []
        self.threads: list[threading.Thread] = []
        self.started = {n: threading.Event() for n in gated}
        self._gates = {n: threading.Event() for n in gated}
        self._fail = fail

    def __call__(self, items: list[Any]) -> list[Any]:
        self.runs.append(list(items))
        self.threads.append(threading.current_thread())
        n = len(self.runs)
        if n in self._gates:
            self.started[n].set()
            assert self._gates[n].wait(30), "the test never released the batch"
        bad = [x for x in items if self._fail(x)]
        if bad:
            raise ValueError(f"bad item {bad[0]}")
        return [2 * x for x in items]

    def wait_started(self, n: int) -> None:
        assert self.started[n].wait(10), f"batch {n} never started"

    def release(self, n: int) -> None:
        self._gates[n].set()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.002)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(16) as p:
        yield p


def queue_calls(
    pool: ThreadPoolExecutor, batcher: Batcher, items: list[Any], **kwargs: Any
) -> list[Future[Any]]:
    """Call `batcher` with each item from a thread of its own, in order: each is queued
    before the next one is made (a batch must be running, or the first would run)."""
    futures = []
    for item in items:
        before = batcher.queued
        futures.append(pool.submit(batcher.call, item, **kwargs))
        wait_until(lambda before=before: batcher.queued == before + 1, f"{item!r} to be queued")
    return futures


def test_an_idle_call_runs_at_once_in_the_callers_thread():
    fn = Gated()
    batcher = Batcher("double", fn, BatchPolicy(8))
    state = CallState()
    assert batcher.call(21, state=state) == 42
    assert fn.runs == [[21]]
    assert fn.threads == [threading.current_thread()]
    assert (state.batch_size, batcher.queued) == (1, 0)
    assert state.queue_wait < 1.0


def test_calls_that_arrive_during_a_batch_go_together_as_the_next_up_to_the_max(pool):
    fn = Gated(1)
    batcher = Batcher("double", fn, BatchPolicy(max_batch_size=3))
    first = pool.submit(batcher.call, 0)
    fn.wait_started(1)
    rest = queue_calls(pool, batcher, [1, 2, 3, 4, 5])
    fn.release(1)
    assert [f.result(10) for f in [first, *rest]] == [0, 2, 4, 6, 8, 10]
    assert fn.runs == [[0], [1, 2, 3], [4, 5]]


def test_a_caller_whose_answer_is_in_returns_while_the_next_batch_runs(pool):
    fn = Gated(1, 2)
    batcher = Batcher("double", fn, BatchPolicy(4))
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)
    (second,) = queue_calls(pool, batcher, [2])
    fn.release(1)
    fn.wait_started(2)
    assert first.result(10) == 2, "the first caller waits for no batch but its own"
    assert not second.done()
    fn.release(2)
    assert second.result(10) == 4
    assert fn.threads[0] is not fn.threads[1], "the queued caller's thread ran its batch"


def test_the_batchers_own_thread_runs_batches_of_coroutines(pool):
    fn = Gated(1)
    batcher = Batcher("double", fn, BatchPolicy(8))
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)

    async def callers() -> list[Any]:
        tasks = [asyncio.ensure_future(batcher.call_async(x)) for x in (2, 3, 4)]
        await asyncio.sleep(0)
        wait_until(lambda: batcher.queued == 3, "three coroutines to be queued")
        fn.release(1)
        return list(await asyncio.gather(*tasks))

    loop_thread: list[threading.Thread] = []

    def run() -> list[Any]:
        loop_thread.append(threading.current_thread())
        return asyncio.run(callers())

    assert pool.submit(run).result(20) == [4, 6, 8]
    assert first.result(10) == 2
    assert fn.runs == [[1], [2, 3, 4]]
    assert fn.threads[1].name.startswith("modelwire-batch-double")
    assert fn.threads[1] is not loop_thread[0]
    batcher.close()


def test_an_idle_coroutine_call_runs_off_the_event_loop():
    fn = Gated()
    batcher = Batcher("double", fn, BatchPolicy(8))
    assert asyncio.run(batcher.call_async(5)) == 10
    assert fn.threads[0] is not threading.current_thread()
    batcher.close()


def test_threads_and_coroutines_share_one_queue(pool):
    fn = Gated(1)
    batcher = Batcher("double", fn, BatchPolicy(8))
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)
    threads = queue_calls(pool, batcher, [2, 3])

    async def coroutine_calls() -> list[Any]:
        tasks = [asyncio.ensure_future(batcher.call_async(x)) for x in (4, 5)]
        await asyncio.sleep(0)
        wait_until(lambda: batcher.queued == 4, "four calls to be queued")
        fn.release(1)
        return list(await asyncio.gather(*tasks))

    assert pool.submit(asyncio.run, coroutine_calls()).result(20) == [8, 10]
    assert [f.result(10) for f in [first, *threads]] == [2, 4, 6]
    assert fn.runs == [[1], [2, 3, 4, 5]]
    batcher.close()


def test_calls_arriving_just_after_a_batch_join_the_backlog_behind_it(pool, monkeypatch):
    """The batch after a batch lets in the calls that keep coming (here within 2 s of
    each other), so that a backlog's stragglers are not left for a batch of their own."""
    monkeypatch.setattr(batching, "TAKE_IN_QUIET", 2.0)
    fn = Gated(1)
    batcher = Batcher("double", fn, BatchPolicy(8))
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)
    (second,) = queue_calls(pool, batcher, [2])
    time.sleep(0.5)  # the first batch runs 0.5 s: the second waits up to 1 s for more
    fn.release(1)
    assert first.result(10) == 2
    third = pool.submit(batcher.call, 3)
    assert (second.result(10), third.result(10)) == (4, 6)
    assert fn.runs == [[1], [2, 3]]


def test_an_idle_call_does_not_wait_for_company_after_a_quiet_spell(monkeypatch):
    monkeypatch.setattr(batching, "TAKE_IN_QUIET", 5.0)
    fn = Gated()
    batcher = Batcher("double", fn, BatchPolicy(8))
    t0 = time.monotonic()
    assert [batcher.call(x) for x in (1, 2, 3)] == [2, 4, 6]
    assert time.monotonic() - t0 < 5.0
    assert fn.runs == [[1], [2], [3]]


def test_a_deadline_that_passes_while_queued_is_answered_without_running_the_model(pool):
    fn = Gated(1)
    batcher = Batcher("double", fn, BatchPolicy(8))
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)
    state = CallState()
    late = pool.submit(batcher.call, 2, time.monotonic() + 0.2, state)
    with pytest.raises(DeadlineExceeded) as info:
        late.result(10)
    assert str(info.value) == (
        "double: the deadline passed while the call waited for its batch; the model did "
        "not run for it"
    )
    assert info.value.subject == "double"
    assert batcher.queued == 0
    fn.release(1)
    assert first.result(10) == 2
    assert batcher.call(3) == 6
    assert fn.runs == [[1], [3]]
    assert state.batch_size == 0


def test_a_call_whose_deadline_has_passed_when_its_batch_forms_is_left_out():
    fn = Gated()
    batcher = Batcher("double", fn, BatchPolicy(8))
    with pytest.raises(DeadlineExceeded):
        batcher.call(1, time.monotonic() - 0.001)
    assert fn.runs == []
    assert batcher.call(2) == 4


def test_a_cancelled_call_leaves_its_batch(pool):
    fn = Gated(1)
    batcher = Batcher("double", fn, BatchPolicy(8))
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)
    state = CallState()
    (gone,) = queue_calls(pool, batcher, [2], state=state)
    (stays,) = queue_calls(pool, batcher, [3])
    state.cancel()
    with pytest.raises(Cancelled) as info:
        gone.result(10)
    assert str(info.value) == "double: the call was cancelled while it waited for its batch"
    fn.release(1)
    assert (first.result(10), stays.result(10)) == (2, 6)
    assert fn.runs == [[1], [3]]


def test_a_call_cancelled_before_it_is_queued_never_runs():
    fn = Gated()
    batcher = Batcher("double", fn, BatchPolicy(8))
    state = CallState()
    state.cancel()
    with pytest.raises(Cancelled):
        batcher.call(1, state=state)
    assert fn.runs == []
    assert batcher.call(2) == 4


def test_a_cancelled_coroutine_leaves_its_batch(pool):
    fn = Gated(1)
    batcher = Batcher("double", fn, BatchPolicy(8))
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)

    async def cancel_one() -> Any:
        gone = asyncio.ensure_future(batcher.call_async(2))
        stays = asyncio.ensure_future(batcher.call_async(3))
        await asyncio.sleep(0)
        wait_until(lambda: batcher.queued == 2, "two coroutines to be queued")
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        fn.release(1)
        return await stays

    assert pool.submit(asyncio.run, cancel_one()).result(20) == 6
    assert first.result(10) == 2
    assert fn.runs == [[1], [3]]
    batcher.close()


def test_a_coroutine_deadline_that_passes_while_queued(pool):
    fn = Gated(1)
    batcher = Batcher("double", fn, BatchPolicy(8))
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)

    async def late() -> None:
        await batcher.call_async(2, time.monotonic() + 0.2)

    with pytest.raises(DeadlineExceeded):
        pool.submit(asyncio.run, late()).result(20)
    fn.release(1)
    assert first.result(10) == 2
    assert fn.runs == [[1]]
    batcher.close()


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


def test_several_parameters_go_as_one_list_each():
    seen: list[dict[str, Any]] = []

    def fn(a: list[float], b: list[int]) -> list[float]:
        seen.append({"a": a, "b": b})
        return [x + y for x, y in zip(a, b, strict=True)]

    batcher = Batcher("add", fn, BatchPolicy(8), keywords=("a", "b"))
    assert batcher.call({"a": 1.5, "b": 2}) == 3.5
    assert seen == [{"a": [1.5], "b": [2]}]


def test_max_delay_waits_for_company_then_runs_a_full_batch_at_once(pool):
    fn = Gated()
    batcher = Batcher("double", fn, BatchPolicy(max_batch_size=3, max_delay_ms=30_000))
    t0 = time.monotonic()
    calls = [pool.submit(batcher.call, x) for x in (1, 2, 3)]
    assert sorted(f.result(20) for f in calls) == [2, 4, 6]
    assert len(fn.runs) == 1 and sorted(fn.runs[0]) == [1, 2, 3]
    assert time.monotonic() - t0 < 20, "a full batch does not wait out the delay"


def test_max_delay_holds_a_lone_call_that_long():
    fn = Gated()
    batcher = Batcher("double", fn, BatchPolicy(max_batch_size=8, max_delay_ms=150))
    t0 = time.monotonic()
    assert batcher.call(1) == 2
    assert time.monotonic() - t0 >= 0.15


def test_the_observer_is_told_each_batch_and_its_queue_waits(pool):
    told: list[tuple[int, list[float]]] = []
    fn = Gated(1)
    batcher = Batcher(
        "double", fn, BatchPolicy(8), observe=lambda n, waits: told.append((n, list(waits)))
    )
    first = pool.submit(batcher.call, 1)
    fn.wait_started(1)
    states = [CallState(), CallState()]
    calls = [
        queue_calls(pool, batcher, [x], state=s)[0] for x, s in zip((2, 3), states, strict=True)
    ]
    time.sleep(0.05)
    fn.release(1)
    assert [f.result(10) for f in [first, *calls]] == [2, 4, 6]
    assert [n for n, _ in told] == [1, 2]
    assert len(told[1][1]) == 2 and min(told[1][1]) >= 0.05
    assert [s.batch_size for s in states] == [2, 2]
    assert all(s.queue_wait >= 0.05 for s in states)


def test_a_failing_observer_fails_its_batch_but_not_the_batcher():
    def observe(size: int, waits: Any) -> None:
        if size == 1 and not calls:
            calls.append(size)
            raise RuntimeError("metrics are down")

    calls: list[int] = []
    batcher = Batcher("double", Gated(), BatchPolicy(8), observe=observe)
    with pytest.raises(RuntimeError, match="metrics are down"):
        batcher.call(1)
    assert batcher.call(2) == 4

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
from typing import Any

import pytest

from modelwire.bundle.batching import BatchPolicy
from modelwire.errors import Cancelled, DeadlineExceeded
from modelwire.runtime import batching
from modelwire.runtime.batching import Batcher, CallState
from tests.runtime.batcher_kit import Gated, pool, queue_calls, wait_until

pytestmark = pytest.mark.timeout(60)

__all__ = ["pool"]  # the fixture, used by name


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

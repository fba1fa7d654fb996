"""What the Batcher tests share: `Gated` holds chosen batches open until released, and
`queue_calls` queues calls one after the other, so the order in a batch is known."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from modelwire.runtime.batching import Batcher


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

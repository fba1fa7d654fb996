"""Adaptive batching: concurrent calls of one batched method, run as one batch.

The policy (`modelwire.bundle.batching.BatchPolicy`): a call that finds the method idle
runs at once, as a batch of one (with `max_delay_ms` > 0 it first waits that long for
company); calls that arrive while a batch runs queue, and the next batch takes up to
`max_batch_size` of them, oldest first. One batch of a method runs at a time per process.
While a batch runs it holds the GIL, which the server needs to accept and read the calls
arriving meanwhile; so the batch after it first lets them in, for as long as they keep
coming and at most twice as long as that batch ran (TAKE_IN_FACTOR, TAKE_IN_QUIET).

Who runs a batch. A thread that calls `Batcher.call` (the sync gRPC server's, the HTTP
face's pool) runs batches itself while it waits, so an idle method costs a lock and no
thread hop. Once its own call is answered it hands the running on, if calls are queued,
to a queued thread, or else to the batcher's own thread. Coroutines (`call_async`, the
aio server) never run a batch on their event loop: the batcher's thread does, and the
loop keeps receiving the calls that make up the next batch.

What a call can meet. Its deadline passing while it is queued answers DeadlineExceeded
and the model never runs for it; a cancelled call leaves the queue (`CallState.cancel`,
or its task being cancelled). What a batch answers each of its calls, failures included,
is `modelwire.runtime.batch_run`'s.

This module decodes and encodes nothing: it gets Python values and gives them back
(`modelwire.runtime.service` does the bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelwire.bundle.batching import BatchPolicy
from modelwire.errors import Cancelled, DeadlineExceeded
from modelwire.runtime.batch_run import BatchFunction

__all__ = ["Batcher", "CallState"]

_QUEUED, _RUNNING, _DONE = 0, 1, 2

# Between two batches, the calls that arrived while the first ran still need the GIL it
# held to reach the queue (grpcio accepts and reads each call in Python). The next batch
# waits for them while they keep coming, each within TAKE_IN_QUIET s of the last, for at
# most TAKE_IN_FACTOR times as long as the batch before ran.
TAKE_IN_FACTOR = 2.0
TAKE_IN_QUIET = 0.001

BatchObserver = Callable[[int, Sequence[float]], None]
"""Told of every batch: its size and how long each of its calls waited in the queue (s)."""


class CallState:
    """What one call tells its batcher and learns from it.

    `cancel()` when the caller has gone (a grpcio termination callback): a queued call
    then leaves the queue. After the call, `batch_size` is the size of the batch it ran
    in (0 if it never ran) and `queue_wait` how long it waited for it, in seconds.
    """

    __slots__ = ("_hook", "batch_size", "cancelled", "queue_wait")

    def __init__(self) -> None:
        self.cancelled = False
        self.batch_size = 0
        self.queue_wait = 0.0
        self._hook: Callable[[], None] | None = None

    def cancel(self) -> None:
        self.cancelled = True
        hook = self._hook
        if hook is not None:
            hook()


class _Entry:
    """One call in the queue or in a batch."""

    __slots__ = (
        "deadline",
        "enqueued",
        "error",
        "event",
        "future",
        "item",
        "lead",
        "loop",
        "result",
        "state",
        "stats",
    )

    def __init__(self, item: Any, deadline: float | None, stats: CallState | None) -> None:
        self.item = item
        self.deadline = deadline
        self.stats = stats
        self.state = _QUEUED
        self.enqueued = time.monotonic()
        self.result: Any = None
        self.error: BaseException | None = None
        self.lead = False  # a waiting thread told to run the batches now
        self.event: threading.Event | None = None  # a waiting thread's wake-up
        self.loop: asyncio.AbstractEventLoop | None = None  # a coroutine's loop ...
        self.future: asyncio.Future[None] | None = None  # ... and its wake-up

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # a cancelled caller's future stays cancelled
        future.set_result(None)


class Batcher:
    """The queue and the batches of one batched method.

    Args:
        method: the method's name (in errors and logs).
        fn: the batch function.
        policy: max batch size and delay.
        keywords: the request's parameters, each passed to `fn` as a keyword with a
            list of values; None when a request is one value (a message), and `fn`
            gets the list of them as its one positional argument.
        observe: told the size and queue waits of every batch (metrics).
    """

    def __init__(
        self,
        method: str,
        fn: Callable[..., Any],
        policy: BatchPolicy,
        *,
        keywords: Sequence[str] | None = None,
        observe: BatchObserver | None = None,
    ) -> None:
        self.method = method
        self.policy = policy
        self._function = BatchFunction(method, fn, keywords)
        self._observe = observe
        self._max = policy.max_batch_size
        self._delay = policy.max_delay_ms / 1000
        self._lock = threading.Lock()
        self._more = threading.Condition(self._lock)  # a queued call, for a gathering batch
        self._queue: deque[_Entry] = deque()
        self._running = False  # one runner at a time: a calling thread or the pool's
        self._gathering = False
        self._last_batch = 0.0  # seconds the last batch ran
        self._pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------ callers

    def call(self, item: Any, deadline: float | None = None, state: CallState | None = None) -> Any:
        """Run one request in a batch, from a thread; its result (or its error raised).

        Args:
            item: the request: its value, or {parameter: value} with `keywords`.
            deadline: a `time.monotonic()` instant, or None.
            state: cancellation in, batch facts out.

        Raises:
            ModelFailed, BadResult, DeadlineExceeded, Cancelled.
        """
        entry = _Entry(item, deadline, state)
        self._attach(entry)
        with self._lock:
            if not self._enqueue(entry):
                return entry.outcome()
            lead = not self._running
            if lead:
                self._running = True
            else:
                entry.event = threading.Event()
        if lead:
            self._run(entry)
        elif self._wait(entry):  # handed the running while queued behind a batch
            self._run(entry, backlog=True)
        return entry.outcome()

    async def call_async(
        self, item: Any, deadline: float | None = None, state: CallState | None = None
    ) -> Any:
        """`call` for a coroutine: the batch runs on the batcher's thread, never the loop."""
        loop = asyncio.get_running_loop()
        entry = _Entry(item, deadline, state)
        entry.loop = loop
        future = entry.future = loop.create_future()
        self._attach(entry)
        with self._lock:
            if not self._enqueue(entry):
                return entry.outcome()
            start = not self._running
            if start:
                self._running = True
        if start:
            self._executor().submit(self._run, None)
        try:
            if deadline is None:
                await future
            else:
                done, _ = await asyncio.wait((future,), timeout=deadline - time.monotonic())
                if not done and not self._expire(entry):
                    await future  # it is running: its answer comes
        except asyncio.CancelledError:
            self._cancel(entry)
            raise
        return entry.outcome()

    @property
    def queued(self) -> int:
        """How many calls wait for a batch now."""
        with self._lock:
            return sum(1 for e in self._queue if e.state == _QUEUED)

    def close(self) -> None:
        """Stop the batcher's thread once it is idle (calls still queued are answered)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    # ------------------------------------------------------------ the queue

    def _attach(self, entry: _Entry) -> None:
        if entry.stats is not None:
            entry.stats._hook = lambda: self._cancel(entry)

    def _enqueue(self, entry: _Entry) -> bool:
        """Queue `entry` (the lock held); False for a call whose caller has gone: it is
        answered Cancelled instead."""
        if entry.stats is not None and entry.stats.cancelled:
            entry.error = self._cancelled()
            entry.state = _DONE
            return False
        self._queue.append(entry)
        if self._gathering:
            self._more.notify()
        return True

    def _wait(self, entry: _Entry) -> bool:
        """Wait until answered or told to run the batches; True for the latter."""
        event = entry.event
        assert event is not None
        timeout = None if entry.deadline is None else entry.deadline - time.monotonic()
        if not event.wait(timeout) and not self._expire(entry):
            event.wait()  # in a batch already, or just told to lead
        return entry.lead

    def _expire(self, entry: _Entry) -> bool:
        """Answer DeadlineExceeded for a call still queued; False if it is too late."""
        with self._lock:
            if entry.state != _QUEUED or entry.lead:
                return False
            self._finish(entry, error=self._late())
            return True

    def _cancel(self, entry: _Entry) -> None:
        with self._lock:
            if entry.state == _QUEUED:
                self._finish(entry, error=self._cancelled())

    def _late(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{self.method}: the deadline passed while the call waited for its batch; the "
            "model did not run for it",
            subject=self.method,
        )

    def _cancelled(self) -> Cancelled:
        return Cancelled(
            f"{self.method}: the call was cancelled while it waited for its batch",
            subject=self.method,
        )

    def _finish(
        self, entry: _Entry, result: Any = None, error: BaseException | None = None
    ) -> None:
        """Answer `entry` and wake its caller (the lock held, or the entry running)."""
        entry.result, entry.error = result, error
        entry.state = _DONE
        if entry.event is not None and not entry.lead:
            entry.event.set()
        elif entry.future is not None and entry.loop is not None:
            # a closed loop raises RuntimeError: nobody is waiting any more
            with contextlib.suppress(RuntimeError):
                entry.loop.call_soon_threadsafe(_settle, entry.future)

    # ------------------------------------------------------------ running

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"modelwire-batch-{self.method}")
        return self._pool

    def _run(self, me: _Entry | None, *, backlog: bool = False) -> None:
        """Run batches while calls are queued: until `me` is answered (a calling thread),
        or the queue is empty (the pool's thread, `me` None). `backlog`: the running was
        handed over, calls queued behind a batch that just ran."""
        while True:
            if backlog:
                self._take_in()
            batch = self._take()
            if batch:
                t0 = time.monotonic()
                self._execute(batch)
                self._last_batch = time.monotonic() - t0
            backlog = True
            with self._lock:
                while self._queue and self._queue[0].state == _DONE:
                    self._queue.popleft()
                if not self._queue:
                    self._running = False
                    return
                if me is None or me.state != _DONE:
                    continue
                self._hand_over()
                return

    def _take_in(self) -> None:
        """Before a batch that follows another, let the calls that arrived while that one
        ran reach the queue (see TAKE_IN_FACTOR), unless a batch is full already."""
        seconds = TAKE_IN_FACTOR * self._last_batch
        quiet = TAKE_IN_QUIET
        with self._lock:
            if not self._queue:
                return
            stop = time.monotonic() + seconds
            self._gathering = True
            try:
                while len(self._queue) < self._max:
                    left = stop - time.monotonic()
                    if left <= 0 or not self._more.wait(min(quiet, left)):
                        break
            finally:
                self._gathering = False

    def _hand_over(self) -> None:
        """Give the running to a queued thread, else to the pool (the lock held)."""
        for entry in self._queue:
            if entry.event is not None and entry.state == _QUEUED:
                entry.lead = True
                entry.event.set()
                return
        self._executor().submit(self._run, None, backlog=True)

    def _take(self) -> list[_Entry]:
        """The next batch: up to max_batch_size queued calls, oldest first."""
        with self._lock:
            if self._delay > 0 and self._queue and len(self._queue) < self._max:
                until = self._queue[0].enqueued + self._delay
                self._gathering = True
                try:
                    while len(self._queue) < self._max:
                        left = until - time.monotonic()
                        if left <= 0:
                            break
                        self._more.wait(left)
                finally:
                    self._gathering = False
            batch: list[_Entry] = []
            now = time.monotonic()
            queue = self._queue
            while queue and len(batch) < self._max:
                entry = queue.popleft()
                if entry.state != _QUEUED:
                    continue
                if entry.deadline is not None and now >= entry.deadline:
                    self._finish(entry, error=self._late())
                    continue
                entry.state = _RUNNING
                batch.append(entry)
            return batch

    def _execute(self, batch: list[_Entry]) -> None:
        start = time.monotonic()
        size = len(batch)
        waits = [start - e.enqueued for e in batch]
        for entry, wait in zip(batch, waits, strict=True):
            if entry.stats is not None:
                entry.stats.batch_size = size
                entry.stats.queue_wait = wait
        try:
            if self._observe is not None:
                self._observe(size, waits)
            outcomes = self._function.run([e.item for e in batch])
            for entry, (result, error) in zip(batch, outcomes, strict=True):
                self._finish(entry, result, error)
        except BaseException as exc:  # a bug of ours must not leave the callers waiting
            for entry in batch:
                if entry.state != _DONE:
                    self._finish(entry, error=exc)
            if not isinstance(exc, Exception):
                raise

"""The process a server runs in: malloc tuning, dying with the parent, signals.

Every modelwire server (a model, a solution, the catalog) and every supervisor uses
these; nothing here knows gRPC.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "ENV_PARENT_PID",
    "Interrupted",
    "follow_parent",
    "interrupt",
    "signals_to",
    "stop_on_signal",
    "tune_malloc",
    "uninterrupted",
    "wait_for_signal",
]

# glibc mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Keep large message buffers on the heap instead of fresh mmaps.

    With glibc's defaults every multi-MB message is mapped and unmapped, which
    costs 2-4x on 4 MB payloads (reference/grpc-limits.md §3). Returns whether
    the settings took effect (False off glibc).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, 256 * 1024 * 1024)
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, 512 * 1024 * 1024)
    return bool(ok)


ENV_PARENT_PID = "MODELWIRE_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def follow_parent() -> None:
    """If started by a modelwire supervisor (MODELWIRE_PARENT_PID), die with it.

    Asks the kernel (Linux) for SIGTERM when the parent dies, even by SIGKILL, so
    workers and local models never outlive the process that started them.
    """
    expected = os.environ.get(ENV_PARENT_PID)
    if not expected:
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if str(os.getppid()) != expected:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def signals_to(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """SIGTERM and SIGINT go to `handler` for a while (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Interrupted(BaseException):
    """SIGTERM or SIGINT arrived before the solution served (a BaseException, like
    KeyboardInterrupt, so no `except Exception` on the way swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def interrupt(signum: int, frame: object) -> None:
    """A signal handler: unwind with Interrupted."""
    raise Interrupted(signum)


@contextlib.contextmanager
def uninterrupted() -> Iterator[None]:
    """SIGTERM and SIGINT take effect after the block: whatever the engine creates in it is
    created whole, and the run's cleanup (which finds it by label) sees it."""
    received: list[int] = []
    with signals_to(lambda signum, frame: received.append(signum)):
        yield
    if received:
        raise Interrupted(received[0])


@contextlib.contextmanager
def stop_on_signal() -> Iterator[tuple[threading.Event, list[int]]]:
    """For a while, SIGTERM and SIGINT set the Event and are recorded in the list.

    Only the first signal touches the Event: Event.set() takes a lock that is not
    reentrant, and a second signal can run the handler inside the first one's set() (a
    parent killed with SIGKILL sends PR_SET_PDEATHSIG again for each of its threads that
    exits), which deadlocked the process for good.
    """
    stop = threading.Event()
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if not received:
            received.append(signum)
            stop.set()

    with signals_to(handler):
        yield stop, received


def wait_for_signal(on_ready: Callable[[], None] | None = None) -> int:
    """Block until SIGTERM or SIGINT (calling `on_ready` once the handlers are in place)."""
    with stop_on_signal() as (stop, received):
        if on_ready is not None:
            on_ready()
        while not stop.wait(3600):
            pass
    return received[0]

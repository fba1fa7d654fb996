"""Supervision of the servers a modelwire command starts: restart what ends, with backoff,
give up after N failed starts in a row, and say once how each one ended.

`modelwire run` supervises its models (local `modelwire serve` processes, or containers
with `--docker`) and `modelwire serve --workers N` its worker processes through one
`Supervisor`: the caller says how to start one copy (`spawn(name) -> Instance`) and what
to do when one serves at an address or is gone (`on_change`). Each name has a thread of
its own that waits for its instance to end (seen at once: a process or container wait,
not a poll), logs the end once, with its status or signal and its last log lines, and
starts a new one:

* at once after a run that served for at least `RestartPolicy.short_run` seconds;
* after `backoff`, then twice that, ... (up to `max_backoff`) when starts fail or runs end
  soon after serving;
* never again after `max_restarts` failed starts in a row (exited, or not SERVING within
  the startup timeout): the name is reported failed with its error, and the caller keeps
  serving what does not need it.

A server that is alive but does not answer is the caller's to notice (a health probe,
`modelwire.hosting.probe`); `kill(name, because)` then ends it and the same path restarts
it. Nothing here knows whether an instance is a process or a container.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelwire.errors import ConfigError

__all__ = [
    "Instance",
    "RestartPolicy",
    "StartFailed",
    "Supervisor",
    "describe_status",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """When a supervisor restarts what ended, and when it gives up.

    Attributes:
        backoff: seconds before the second restart in a row (the first after a good
            run is at once); doubled for each further one.
        max_backoff: the longest pause between restarts.
        max_restarts: failed starts in a row before giving up; 0 never restarts.
        short_run: a run that served for less than this many seconds ends a "good run"
            streak, so a server that crashes soon after each start is restarted with
            backoff too.
    """

    backoff: float = 0.5
    max_backoff: float = 30.0
    max_restarts: int = 5
    short_run: float = 5.0

    def __post_init__(self) -> None:
        if self.backoff < 0:
            raise ConfigError("restart_backoff", self.backoff, "must not be negative")
        if self.max_restarts < 0:
            raise ConfigError("max_restarts", self.max_restarts, "must not be negative")

    def pause(self, streak: int) -> float:
        """Seconds before a restart after `streak` short runs or failed starts in a row."""
        if streak <= 0:
            return 0.0
        return float(min(self.max_backoff, self.backoff * 2 ** (streak - 1)))


class StartFailed(Exception):
    """An instance did not come to serve: it ended, or did not report SERVING in time."""


class Instance(Protocol):
    """One running copy of a supervised server: a process or a container."""

    @property
    def what(self) -> str:
        """How logs name it, e.g. `pid 4242` or `container x`."""

    def wait_serving(self, timeout: float, cancelled: threading.Event) -> str:
        """Wait until it reports SERVING; its address.

        Raises:
            StartFailed: it ended, `timeout` passed, or `cancelled` was set (the message
                says which, and quotes its last words).
        """

    def wait(self) -> None:
        """Block until it has ended."""

    def ended(self) -> str:
        """How it ended, e.g. `exited with status 1`, `was killed by SIGKILL`."""

    def last_lines(self) -> Sequence[str]:
        """Its last log lines (a few), oldest first."""

    def kill(self) -> None:
        """End it now (SIGKILL, `docker kill`); a no-op once it has ended."""


def describe_status(returncode: int) -> str:
    """A process's end from its return code (`-9` -> `was killed by SIGKILL`)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


# on_change(name, address, why): `address` serves now; or None, and why it does not, to
# follow the name: "is restarting (it was killed by SIGKILL)", "has failed (...)"
OnChange = Callable[[str, "str | None", str], None]


@dataclass
class _Slot:
    name: str
    instance: Instance
    address: str | None
    serving_since: float
    streak: int = 0  # short runs and failed starts in a row (the backoff)
    failed_starts: int = 0  # failed starts in a row (giving up)
    killed_because: str | None = None
    failed: str | None = None
    thread: threading.Thread | None = None


class Supervisor:
    """Restarts the instances of several named servers as they end.

    Args:
        kind: what the names are, for log lines (`model`, `worker`).
        spawn: starts a new instance of a name (it need not serve yet).
        policy: when to restart and when to give up.
        startup_timeout: seconds a new instance has to report SERVING.
        on_change: told (from the name's thread) when a name serves at a new address,
            and when it stops serving, with why.
    """

    def __init__(
        self,
        kind: str,
        spawn: Callable[[str], Instance],
        policy: RestartPolicy,
        startup_timeout: float,
        on_change: OnChange,
    ) -> None:
        self.kind = kind
        self.spawn = spawn
        self.policy = policy
        self.startup_timeout = startup_timeout
        self.on_change = on_change
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def adopt(self, name: str, instance: Instance, address: str) -> None:
        """Supervise `instance` of `name`, which serves at `address`, from now on."""
        slot = _Slot(name, instance, address, time.monotonic())
        self._slots[name] = slot
        slot.thread = threading.Thread(
            target=self._watch, args=(slot,), daemon=True, name=f"supervise {name}"
        )
        slot.thread.start()

    def kill(self, name: str, address: str, because: str) -> bool:
        """End the instance of `name` serving at `address` (it stopped answering, say);
        whether one was killed. Its end is logged with `because`, then it is restarted."""
        with self._lock:
            slot = self._slots.get(name)
            if slot is None or slot.address != address or self._stopping.is_set():
                return False
            slot.killed_because = because
            instance = slot.instance
        instance.kill()
        return True

    def failed(self) -> dict[str, str]:
        """The names given up on, and why."""
        return {n: s.failed for n, s in self._slots.items() if s.failed is not None}

    def stop(self) -> list[Instance]:
        """Restart nothing from now on; the current instances, for the caller to stop.

        An instance being started is among them: it was registered before it started.
        """
        with self._lock:
            self._stopping.set()
            return [s.instance for s in self._slots.values()]

    def join(self, timeout: float) -> None:
        """Wait for the names' threads, once their instances are stopped."""
        deadline = time.monotonic() + timeout
        for slot in self._slots.values():
            if slot.thread is not None:
                slot.thread.join(max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------ one name's thread

    def _watch(self, slot: _Slot) -> None:
        while True:
            slot.instance.wait()
            if self._stopping.is_set():
                return
            served = time.monotonic() - slot.serving_since
            slot.streak = slot.streak + 1 if served < self.policy.short_run else 0
            why = self._log_end(slot, served)
            slot.address = None
            if self.policy.max_restarts == 0:
                self._give_up(slot, f"it {why}; restarts are off")
                return
            self.on_change(slot.name, None, f"is restarting (it {why})")
            if not self._restart(slot):
                return

    def _log_end(self, slot: _Slot, served: float) -> str:
        """Log how the instance ended, once; returns the short form of it."""
        instance = slot.instance
        because, slot.killed_because = slot.killed_because, None
        ended = instance.ended()
        if self.policy.max_restarts == 0:
            then = "not restarting it (restarts are off)"
        else:
            pause = self.policy.pause(slot.streak)
            then = f"restarting it in {pause:g} s" if pause else "restarting it at once"
        tail = "\n".join(f"    {line}" for line in instance.last_lines())
        logger.error(
            "%s %s (%s) %s after serving %.1f s; %s%s",
            self.kind,
            slot.name,
            instance.what,
            f"{because}: killed it" if because else ended,
            served,
            then,
            f"; its last log lines:\n{tail}" if tail else "",
            extra={self.kind: slot.name, "ended": ended},
        )
        return because or ended

    def _restart(self, slot: _Slot) -> bool:
        """Start instances until one serves (True) or the name is given up (False)."""
        while True:
            if self._stopping.wait(self.policy.pause(slot.streak)):
                return False
            t0 = time.monotonic()
            with self._lock:
                if self._stopping.is_set():
                    return False
                try:
                    slot.instance = self.spawn(slot.name)
                except Exception as exc:  # e.g. the engine refused a container
                    error = f"could not be started: {exc}"
                    spawned = False
                else:
                    spawned = True
            if spawned:
                try:
                    address = slot.instance.wait_serving(self.startup_timeout, self._stopping)
                except StartFailed as exc:
                    error = str(exc)
                    slot.instance.kill()  # one that hangs while loading is not left behind
                    slot.instance.wait()
                else:
                    slot.failed_starts = 0
                    slot.address, slot.serving_since = address, time.monotonic()
                    logger.info(
                        "%s %s serving again at %s (%s), %.2f s after its restart",
                        self.kind,
                        slot.name,
                        address,
                        slot.instance.what,
                        slot.serving_since - t0,
                        extra={self.kind: slot.name, "address": address},
                    )
                    self.on_change(slot.name, address, "")
                    return True
            if self._stopping.is_set():
                return False
            slot.failed_starts += 1
            slot.streak += 1
            if slot.failed_starts >= self.policy.max_restarts:
                first = error.splitlines()[0].rstrip(":") if error else "unknown"
                logger.error(
                    "%s %s failed to restart (attempt %d of %d): %s",
                    self.kind,
                    slot.name,
                    slot.failed_starts,
                    self.policy.max_restarts,
                    error,
                    extra={self.kind: slot.name},
                )
                self._give_up(
                    slot, f"{slot.failed_starts} restarts in a row failed; the last: {first}"
                )
                return False
            logger.error(
                "%s %s failed to restart (attempt %d of %d): %s; trying again in %g s",
                self.kind,
                slot.name,
                slot.failed_starts,
                self.policy.max_restarts,
                error,
                self.policy.pause(slot.streak),
                extra={self.kind: slot.name},
            )

    def _give_up(self, slot: _Slot, why: str) -> None:
        slot.failed = why
        logger.error(
            "%s %s has failed (%s): not starting it again",
            self.kind,
            slot.name,
            why,
            extra={self.kind: slot.name},
        )
        self.on_change(slot.name, None, f"has failed ({why})")

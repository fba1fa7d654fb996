"""Concurrent load and a health watch for the fault-injection tests.

`Load` runs callers in threads, each on a connection of its own (a channel with a local
subchannel pool, so `serve --workers` spreads them over its workers), each sending requests
no other caller sends and checking every answer against the one its own request must get:
an answer meant for another caller, or for another request, is a wrong answer. Every
call's outcome is kept with its start and end times.

`HealthWatch` polls grpc.health.v1 of a server for some names and keeps each change with
its time, so a test can assert the transitions and when they happened.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from modelwire.errors import ServiceError
from modelwire.runtime.client import RemoteModel, connect

# method -> (the kwargs of request `seq` of caller `caller`, the answer it must get)
Calls = Mapping[str, Callable[[int, int], tuple[dict[str, Any], Any]]]


@dataclass(frozen=True)
class Outcome:
    """One call: who made it, when, and what came back."""

    caller: int
    seq: int
    method: str
    started: float
    ended: float
    status: str  # "OK" or the gRPC status
    details: str
    correct: bool  # an OK answer equal to the expected one (False for failures)


class Load:
    """`callers` threads calling `calls` of the service at `address` in turns.

    Args:
        address: the service.
        calls: the methods to call, each with its requests and expected answers.
        callers: how many threads, each with a connection of its own.
        pause: seconds each caller waits between its calls.
        deadline: each call's deadline, in seconds.
    """

    def __init__(
        self,
        address: str,
        calls: Calls,
        *,
        callers: int = 8,
        pause: float = 0.02,
        deadline: float = 2.0,
    ) -> None:
        self.address = address
        self.calls = calls
        self.callers = callers
        self.pause = pause
        self.deadline = deadline
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(callers)
        ]

    def start(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for t in self._threads:
            t.join(self.deadline + 10)
        return self.results()

    def results(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def _client(self, caller: int) -> tuple[grpc.Channel, RemoteModel]:
        channel = grpc.insecure_channel(
            self.address,
            options=[("grpc.use_local_subchannel_pool", 1), ("test.caller", caller)],
        )
        return channel, connect(self.address, channel=channel, timeout=self.deadline)

    def _run(self, caller: int) -> None:
        channel, client = self._client(caller)
        methods = list(self.calls)
        seq = 0
        try:
            while not self._stop.is_set():
                method = methods[seq % len(methods)]
                kwargs, expected = self.calls[method](caller, seq)
                started = time.monotonic()
                try:
                    answer = getattr(client, method)(**kwargs)
                except ServiceError as exc:
                    outcome = Outcome(
                        caller,
                        seq,
                        method,
                        started,
                        time.monotonic(),
                        exc.status or "UNKNOWN",
                        exc.details,
                        False,
                    )
                else:
                    outcome = Outcome(
                        caller,
                        seq,
                        method,
                        started,
                        time.monotonic(),
                        "OK",
                        "",
                        tuple(answer) == tuple(expected),
                    )
                with self._lock:
                    self.outcomes.append(outcome)
                seq += 1
                self._stop.wait(self.pause)
        finally:
            channel.close()


def recovered(
    outcomes: Sequence[Outcome],
    after: float,
    method: str | None = None,
    *,
    once_failing: bool = False,
) -> float:
    """When the first call started after `after` (of `method`, if given) succeeded; with
    `once_failing`, the first started once a call had failed after `after` (a fault takes
    effect a moment later: a killed container or a frozen one still answers meanwhile)."""
    if once_failing:
        failed = [
            o.ended
            for o in outcomes
            if o.status != "OK" and o.ended >= after and method in (None, o.method)
        ]
        assert failed, f"no call failed after the fault at {after:.3f}"
        after = min(failed)
    ends = [
        o.ended
        for o in outcomes
        if o.status == "OK" and o.started > after and method in (None, o.method)
    ]
    assert ends, f"no call succeeded after the fault at {after:.3f}"
    return min(ends)


def _health(address: str, name: str) -> str:
    """One Check on a connection of its own (as a load balancer's probe: a new one, never
    one the last check left open to a process that is gone since)."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(address, options=options) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            reply = check(health_pb2.HealthCheckRequest(service=name), timeout=1.0)
        except grpc.RpcError as exc:
            return exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


_AGAIN = re.compile(r"(\w+) (\S+) serving again at .*, ([0-9.]+) s after its restart$")


def own_starts(logs: Sequence[Mapping[str, Any]], name: str) -> list[float]:
    """How long each restart of `name` (a model or a worker) took by itself, from its
    spawn to SERVING, as the supervisor logged it: what recovery cannot be shorter than."""
    found = []
    for record in logs:
        m = _AGAIN.match(str(record.get("message", "")))
        if m and m.group(2) == name:
            found.append(float(m.group(3)))
    return found


class HealthWatch:
    """Polls the health of `names` at `address` every `interval` s; keeps each change."""

    def __init__(self, address: str, names: Sequence[str], interval: float = 0.02) -> None:
        self.address = address
        self.names = list(names)
        self.interval = interval
        self.changes: dict[str, list[tuple[float, str]]] = {n: [] for n in names}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> HealthWatch:
        self._thread.start()
        return self

    def stop(self) -> dict[str, list[tuple[float, str]]]:
        self._stop.set()
        self._thread.join(10)
        return self.changes

    def _run(self) -> None:
        while not self._stop.is_set():
            for name in self.names:
                status = _health(self.address, name)
                seen = self.changes[name]
                if not seen or seen[-1][1] != status:
                    seen.append((time.monotonic(), status))
            self._stop.wait(self.interval)

    def states(self, name: str, since: float = 0.0) -> list[str]:
        """The statuses `name` went through from `since` (the one it had then first)."""
        seen = self.changes[name]
        before = [s for t, s in seen if t <= since][-1:]
        return before + [s for t, s in seen if t > since]

    def when(self, name: str, status: str, after: float) -> float:
        """When `name` first reported `status` after `after`."""
        times = [t for t, s in self.changes[name] if s == status and t > after]
        assert times, f"{name!r} never reported {status} after {after:.3f}: {self.changes[name]}"
        return times[0]

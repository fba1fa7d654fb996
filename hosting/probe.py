"""Liveness and readiness of one server, from its grpc.health.v1 answers: a probe thread.

A `HealthProbe` calls `Check` at an interval on a channel of its own and reports every
change of what it finds (`Probed`): SERVING; answering but not SERVING (loading,
draining); unreachable (refused: nothing listens there); or unresponsive (no answer for
`ready_after` seconds: stopped with SIGSTOP, deadlocked, its threads all stuck). When it
has not answered for `liveness` seconds the probe says so once (`on_unresponsive`), and
whoever started the server kills it.

Why periodic Checks: measured on this machine against `modelwire serve`, a
`grpc.health.v1` Watch stream to a SIGSTOPped server stayed open and silent (the kernel
keeps its connections up); keepalive pings often enough to notice are refused by grpc
servers' default ping policy (GOAWAY `too_many_pings`); a Check every 0.5 s with a 1 s
deadline notices within 1-1.5 s and costs ~0.8 ms of CPU per check on both sides
together (~0.2 % of a core per server). A Check goes through the same thread pool as the
server's calls, so a server whose pool is stuck is seen too.

A process that exits is seen by whoever waits for it (at once); the probe sees it as
unreachable within one interval.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2

from modelwire.config import ClientTls
from modelwire.hosting.health import HEALTH_SERVICE
from modelwire.hosting.tls import open_channel

__all__ = ["HealthProbe", "Probed"]

logger = logging.getLogger(__name__)

_FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    # the probe has a connection of its own, never shared with the calls' channels
    ("grpc.use_local_subchannel_pool", 1),
]


class Probed(enum.Enum):
    """What a server's health answers say."""

    UNKNOWN = "unknown"  # not probed yet
    SERVING = "serving"
    NOT_SERVING = "not serving"  # answers, but not SERVING (loading, draining)
    UNREACHABLE = "unreachable"  # the connection is refused, or dropped
    UNRESPONSIVE = "unresponsive"  # connected, but no answer within the deadline

    @property
    def serving(self) -> bool:
        return self is Probed.SERVING


class HealthProbe:
    """Probes `address` in a daemon thread until `stop()`.

    Args:
        address: `host:port` of the server.
        on_change: called with the new state whenever it changes (in the probe's thread).
        on_unresponsive: called once when no answer came for `liveness` seconds (then
            again only after the server answered in between).
        interval: seconds between checks while SERVING (a quarter of it otherwise, so a
            server coming back is seen soon).
        timeout: the deadline of one check.
        ready_after: seconds without an answer before the server counts as unresponsive.
        liveness: seconds without an answer before `on_unresponsive`.
        tls: how to reach a TLS server; None: plaintext.
    """

    def __init__(
        self,
        address: str,
        *,
        on_change: Callable[[Probed], None],
        on_unresponsive: Callable[[], None] | None = None,
        interval: float = 0.5,
        timeout: float = 1.0,
        ready_after: float = 1.0,
        liveness: float = 3.0,
        tls: ClientTls | None = None,
    ) -> None:
        self.address = address
        self.tls = tls
        self.on_change = on_change
        self.on_unresponsive = on_unresponsive
        self.interval = interval
        self.timeout = min(timeout, liveness)
        self.ready_after = ready_after
        self.liveness = liveness
        self.state = Probed.UNKNOWN
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"probe {address}")

    def start(self) -> HealthProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop probing (the thread ends within one check's deadline)."""
        self._stop.set()

    def _set(self, state: Probed) -> None:
        if state is not self.state:
            self.state = state
            self.on_change(state)

    def _run(self) -> None:
        request = health_pb2.HealthCheckRequest().SerializeToString()
        last_answer = time.monotonic()
        told = False  # on_unresponsive was called for this silence
        with open_channel(self.address, self.tls, _FAST_RECONNECT) as channel:
            check: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                f"/{HEALTH_SERVICE}/Check"
            )
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    reply = health_pb2.HealthCheckResponse.FromString(
                        check(request, timeout=self.timeout)
                    )
                except grpc.RpcError as exc:
                    code = exc.code() if isinstance(exc, grpc.Call) else None
                    now = time.monotonic()
                    if self._stop.is_set():
                        break
                    if code is grpc.StatusCode.UNAVAILABLE and now - started < self.timeout:
                        # refused at once: nothing listens (a dead process is no hang)
                        self._set(Probed.UNREACHABLE)
                        last_answer = now
                    elif code is grpc.StatusCode.DEADLINE_EXCEEDED or (
                        code is grpc.StatusCode.UNAVAILABLE
                    ):
                        if now - last_answer >= self.ready_after:
                            self._set(Probed.UNRESPONSIVE)
                        if now - last_answer >= self.liveness and not told:
                            told = True
                            if self.on_unresponsive is not None:
                                self.on_unresponsive()
                    else:  # UNIMPLEMENTED, ...: it answers, but says nothing of health
                        last_answer, told = now, False
                        self._set(Probed.NOT_SERVING)
                else:
                    last_answer, told = time.monotonic(), False
                    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
                    self._set(Probed.SERVING if serving else Probed.NOT_SERVING)
                pause = self.interval if self.state.serving else self.interval / 4
                self._stop.wait(max(0.0, started + pause - time.monotonic()))

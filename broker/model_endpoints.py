"""One model's endpoints: `Endpoint` (one running copy: its address, channel and health)
and `ModelEndpoints` (one slot per replica, the round robin over the SERVING ones, and
why a model serves no call). `modelwire.broker.endpoints` keeps them up to date.
"""

from __future__ import annotations

from typing import Any

import grpc

from modelwire.hosting.probe import HealthProbe, Probed

__all__ = ["Endpoint", "ModelEndpoints"]


class Endpoint:
    """One running copy of a model: its address, channel and health."""

    def __init__(
        self,
        model: str,
        address: str,
        channel: grpc.aio.Channel,
        health: Probed,
        replica: str = "1",
    ):
        self.model = model
        self.address = address
        # the `replica` label of its metrics: its number for a replica the runner
        # started (its address changes when it restarts), its address for one found
        # by resolving a `dns:///` name
        self.replica = replica
        self.channel = channel
        self.health = health
        self.probe: HealthProbe | None = None
        self.served = False  # it has answered SERVING once (or was SERVING when added)
        self._calls: dict[str, Any] = {}

    def call(self, path: str) -> Any:
        """The unary multicallable of rpc `path` (raw bytes in and out), made once."""
        call = self._calls.get(path)
        if call is None:
            call = self._calls[path] = self.channel.unary_unary(path)
        return call

    @property
    def usable(self) -> bool:
        """Worth a call: SERVING, not probed yet, or refusing (which fails at once)."""
        return self.health in (Probed.SERVING, Probed.UNKNOWN, Probed.UNREACHABLE)

    def describe(self) -> str:
        """Why a call is not sent here, e.g. `at 127.0.0.1:4242 is not answering`."""
        if self.health is Probed.UNRESPONSIVE:
            return f"at {self.address} is not answering its health checks"
        if self.health is Probed.NOT_SERVING:
            return f"at {self.address} reports NOT_SERVING"
        return f"at {self.address} is {self.health.value}"


class ModelEndpoints:
    """The endpoints of one model, one slot per replica, and why a slot is empty.

    A model the runner starts has a fixed number of replicas (slots); a replica that is
    down has no endpoint, and `downs` says why. A model at a `dns:///` address has one
    endpoint per address its name resolves to (`modelwire.broker.discovery`), and no
    fixed slots.
    """

    def __init__(self, name: str, replicas: int = 1) -> None:
        self.name = name
        self.slots: list[Endpoint | None] = [None] * replicas
        # why each slot is empty: "is restarting (...)", "has failed (...)"
        self.downs: list[str] = [""] * replicas
        self.down = ""  # why a discovered model has no endpoint (its name resolves to none)
        self._next = 0  # where the round robin goes on

    @property
    def endpoints(self) -> list[Endpoint]:
        """The endpoints that exist now, in replica order."""
        return [e for e in self.slots if e is not None]

    def pick(self) -> Endpoint | None:
        """The endpoint for a call, round robin over the SERVING ones (not probed yet
        counts as SERVING); else one that refuses connections; None if none is worth a
        call."""
        slots = self.slots
        n = len(slots)
        fallback = None
        for k in range(n):
            i = (self._next + k) % n
            e = slots[i]
            if e is None:
                continue
            if e.health in (Probed.SERVING, Probed.UNKNOWN):
                self._next = i + 1
                return e
            if e.usable and fallback is None:
                fallback = e
        return fallback

    @property
    def serving(self) -> bool:
        """Whether a call can be served now: an endpoint is SERVING (or not probed yet)."""
        return any(e.health in (Probed.SERVING, Probed.UNKNOWN) for e in self.endpoints)

    def why_not(self) -> str:
        """Why the model serves no call now, as in `model 'm' is restarting (...)`."""
        if len(self.slots) == 1 and self.slots[0] is None:
            return f"model {self.name!r} {self.downs[0] or self.down or 'is not running'}"
        if len(self.slots) == 1:
            e = self.slots[0]
            assert e is not None
            return f"model {self.name!r} {e.describe()}"
        if not self.slots:
            return f"model {self.name!r} {self.down or 'is not running'}"
        parts = []
        for i, e in enumerate(self.slots):
            if e is None:
                parts.append(f"{self.replica_name(i)} {self.downs[i] or 'is not running'}")
            else:
                parts.append(f"{self.replica_name(i)} {e.describe()}")
        return f"model {self.name!r}: " + "; ".join(parts)

    def replica_name(self, index: int) -> str:
        return f"replica {index + 1}"

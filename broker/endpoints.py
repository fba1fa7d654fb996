"""The broker's view of each model: a set of endpoints, each with a live health state.

A model has one endpoint per running copy (one today; `replicas: N` adds more). An
endpoint is an address, the grpc.aio channel the router calls it on, and what its health
probe last found (`modelwire.hosting.probe`: a Check every 0.5 s, in a thread of its
own). The router asks a model for an endpoint per call (`ModelEndpoints.pick`): a
SERVING one, else one that refuses connections (a call to it fails at once, or reaches a
model that is back), never one that hangs or reports NOT_SERVING. Supervision replaces
a model's endpoint when it restarts it at a new address (`Endpoints.replace`), and
leaves the model without one, saying why, while it is down.

Everything here runs on the broker's event loop; probes report from their threads
through `loop.call_soon_threadsafe`. Listeners (`Endpoints.subscribe`) hear of every
change of a model's availability: the solution's health follows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from modelwire.hosting.probe import HealthProbe, Probed

__all__ = ["Endpoint", "Endpoints", "ModelEndpoints"]

logger = logging.getLogger(__name__)

_RECONNECT_MS = 100


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # a model back at the same address is reached again within ~0.1 s, so that
        # `retry` (on UNAVAILABLE) helps; grpc's default waits 1 s, then 1.6 s, ...
        ("grpc.initial_reconnect_backoff_ms", _RECONNECT_MS),
        ("grpc.min_reconnect_backoff_ms", _RECONNECT_MS),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]


class Endpoint:
    """One running copy of a model: its address, channel and health."""

    def __init__(self, model: str, address: str, channel: grpc.aio.Channel, health: Probed):
        self.model = model
        self.address = address
        self.channel = channel
        self.health = health
        self.probe: HealthProbe | None = None
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
    """The endpoints of one model, and why it has none while it is down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.endpoints: list[Endpoint] = []
        self.down = ""  # why it has no endpoint: "is restarting (...)", "has failed (...)"

    def pick(self) -> Endpoint | None:
        """The endpoint for a call: a SERVING one first; None if none is worth a call."""
        best = None
        for e in self.endpoints:
            if e.health in (Probed.SERVING, Probed.UNKNOWN):
                return e
            if e.usable and best is None:
                best = e
        return best

    @property
    def serving(self) -> bool:
        """Whether a call can be served now: an endpoint is SERVING (or not probed yet)."""
        return any(e.health in (Probed.SERVING, Probed.UNKNOWN) for e in self.endpoints)

    def why_not(self) -> str:
        """Why the model serves no call now, as in `model 'm' is restarting (...)`."""
        if not self.endpoints:
            return f"model {self.name!r} {self.down or 'is not running'}"
        return f"model {self.name!r} " + "; ".join(e.describe() for e in self.endpoints)


class Endpoints:
    """Every model's endpoints, their channels and health probes.

    Args:
        addresses: model -> address of its first endpoint.
        max_message_bytes: the largest message sent to or accepted from a model.
        liveness: seconds without a health answer before `on_unresponsive`.
        on_unresponsive: told (model, address) when an endpoint stops answering, so its
            supervisor can kill it; None for models nobody supervises.
        probe: whether to probe at all (tests of the router alone may not).
    """

    def __init__(
        self,
        addresses: Mapping[str, str],
        *,
        max_message_bytes: int = 256 * 1024 * 1024,
        liveness: float = 3.0,
        on_unresponsive: Callable[[str, str], None] | None = None,
        probe: bool = True,
    ) -> None:
        self.models = {name: ModelEndpoints(name) for name in addresses}
        self._initial = dict(addresses)
        self._options = channel_options(max_message_bytes)
        self.liveness = liveness
        self.on_unresponsive = on_unresponsive
        self._probe = probe
        self._listeners: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Open a channel to every first endpoint and start probing them."""
        self._loop = asyncio.get_running_loop()
        for name, address in self._initial.items():
            if not self.models[name].endpoints:
                self._add(name, address, Probed.UNKNOWN)

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (on the loop) after a model's availability changes."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def _add(self, model: str, address: str, health: Probed) -> Endpoint:
        channel = grpc.aio.insecure_channel(address, options=self._options)
        endpoint = Endpoint(model, address, channel, health)
        self.models[model].endpoints.append(endpoint)
        if self._probe:
            endpoint.probe = HealthProbe(
                address,
                on_change=lambda state: self._threadsafe(self._probed, endpoint, state),
                on_unresponsive=lambda: self._unresponsive(endpoint),
                liveness=self.liveness,
            ).start()
        return endpoint

    def _threadsafe(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: we are stopping
                loop.call_soon_threadsafe(fn, *args)

    def _probed(self, endpoint: Endpoint, state: Probed) -> None:
        if endpoint not in self.models[endpoint.model].endpoints:
            return  # replaced meanwhile
        if state is endpoint.health:
            return
        before = self.models[endpoint.model].serving
        first = endpoint.health is Probed.UNKNOWN and state.serving
        endpoint.health = state
        log = logger.debug if first else logger.info if state.serving else logger.warning
        log(
            "model %s at %s: %s",
            endpoint.model,
            endpoint.address,
            state.value,
            extra={"model": endpoint.model, "address": endpoint.address, "health": state.value},
        )
        if self.models[endpoint.model].serving != before:
            self._changed()

    def _unresponsive(self, endpoint: Endpoint) -> None:
        if self.on_unresponsive is not None:
            self.on_unresponsive(endpoint.model, endpoint.address)

    def replace(self, model: str, address: str | None, why: str = "") -> None:
        """Model `model` serves at `address` now (a new endpoint, SERVING: its supervisor
        waited for that), instead of where it did; or, with None, it is down, and `why`.

        Call on the loop (`replace_threadsafe` from elsewhere).
        """
        entry = self.models[model]
        for old in entry.endpoints:
            self._close(old)
        entry.endpoints = []
        entry.down = why
        if address is not None:
            self._add(model, address, Probed.SERVING)
        self._changed()

    def replace_threadsafe(self, model: str, address: str | None, why: str = "") -> None:
        """`replace`, from any thread (the supervisor's)."""
        self._threadsafe(self.replace, model, address, why)

    def _close(self, endpoint: Endpoint) -> None:
        if endpoint.probe is not None:
            endpoint.probe.stop()
        # calls still in flight on it fail on their own (the model is gone)
        task = asyncio.ensure_future(endpoint.channel.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Stop every probe and close every channel."""
        for entry in self.models.values():
            for e in entry.endpoints:
                if e.probe is not None:
                    e.probe.stop()
            await asyncio.gather(*(e.channel.close() for e in entry.endpoints))
            entry.endpoints = []
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

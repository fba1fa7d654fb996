"""The broker's view of each model: a set of endpoints, each with a live health state.

A model has one endpoint per running copy: one per replica the runner started
(`replicas: N`), or one per address its `dns:///NAME:PORT` address resolves to
(`modelwire.broker.discovery`, resolved again every second). An endpoint is an address,
the grpc.aio channel the router calls it on, and what its health probe last found
(`modelwire.hosting.probe`: a Check every 0.5 s, in a thread of its own). The router
asks a model for an endpoint per call (`ModelEndpoints.pick`): round robin over the
SERVING ones, so calls, not connections, are balanced over the replicas; else one
that refuses connections (a call to it fails at once, or reaches a model that is
back), never one that hangs or reports NOT_SERVING. A model is down only while none
of its replicas serves. Supervision replaces a replica's endpoint when it restarts it
at a new address (`Endpoints.replace`), and leaves the replica without one, saying
why, while it is down.

Everything here runs on the broker's event loop; probes report from their threads
through `loop.call_soon_threadsafe`. Listeners (`Endpoints.subscribe`) hear of every
change of a model's availability: the solution's health follows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelwire.broker.discovery import Discovery, is_dns_target
from modelwire.broker.model_endpoints import Endpoint, ModelEndpoints
from modelwire.config import ClientTls
from modelwire.hosting.probe import HealthProbe, Probed
from modelwire.hosting.tls import open_aio_channel

__all__ = ["Endpoint", "Endpoints", "ModelEndpoints"]

logger = logging.getLogger(__name__)

_RECONNECT_MS = 100
_DRAIN_SECONDS = 30.0  # how long calls on an endpoint gone from DNS may take to finish


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


class Endpoints:
    """Every model's endpoints, their channels and health probes.

    Args:
        addresses: model -> the address of each of its replicas (one string: one
            replica). A model at a single `dns:///NAME:PORT` address gets one endpoint
            per address NAME resolves to, kept up to date (`modelwire.broker.discovery`).
        max_message_bytes: the largest message sent to or accepted from a model.
        liveness: seconds without a health answer before `on_unresponsive`.
        on_unresponsive: told (model, address) when an endpoint stops answering, so its
            supervisor can kill it; None for models nobody supervises.
        probe: whether to probe at all (tests of the router alone may not).
        resolve_every: seconds between two resolutions of a `dns:///` name.
        tls: how to reach the models served with TLS (a blueprint's `tls:`), by name.
    """

    def __init__(
        self,
        addresses: Mapping[str, str | Sequence[str]],
        *,
        max_message_bytes: int = 256 * 1024 * 1024,
        liveness: float = 3.0,
        on_unresponsive: Callable[[str, str], None] | None = None,
        probe: bool = True,
        resolve_every: float = 1.0,
        tls: Mapping[str, ClientTls] | None = None,
    ) -> None:
        self._initial = {
            name: [a] if isinstance(a, str) else list(a) for name, a in addresses.items()
        }
        self._discovered = {
            name: a[0] for name, a in self._initial.items() if len(a) == 1 and is_dns_target(a[0])
        }
        self.models = {
            name: ModelEndpoints(name, 0 if name in self._discovered else len(a))
            for name, a in self._initial.items()
        }
        self._options = channel_options(max_message_bytes)
        self._tls = dict(tls or {})
        self.liveness = liveness
        self.on_unresponsive = on_unresponsive
        self._probe = probe
        self._resolve_every = resolve_every
        self._listeners: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._resolvers: list[asyncio.Task[None]] = []
        self._draining: set[Endpoint] = set()  # gone from DNS, closed in a while

    async def start(self) -> None:
        """Open a channel to every first endpoint and start probing them; resolve the
        `dns:///` names once (then every `resolve_every` seconds)."""
        self._loop = asyncio.get_running_loop()
        for name, addresses in self._initial.items():
            if name in self._discovered:
                continue
            entry = self.models[name]
            for i, address in enumerate(addresses):
                if entry.slots[i] is None:
                    entry.slots[i] = self._open(name, address, Probed.UNKNOWN, str(i + 1))
        for name, target in self._discovered.items():
            resolver = Discovery(target)
            self.found(name, await resolver.addresses())
            self._resolvers.append(asyncio.ensure_future(self._follow(name, resolver)))

    async def _follow(self, model: str, resolver: Discovery) -> None:
        while True:
            await asyncio.sleep(self._resolve_every)
            self.found(model, await resolver.addresses())

    def found(self, model: str, addresses: list[str] | str) -> None:
        """A `dns:///` model's name resolves to `addresses` now (a string: why it
        resolves to none): open an endpoint for each new one, drop those gone.

        An address that went away keeps the endpoints it had when the name resolved to
        none: a DNS server that fails for a moment does not take a model down.
        """
        entry = self.models[model]
        if isinstance(addresses, str):
            if not entry.slots:
                entry.down = addresses
            return
        before = entry.serving
        have = {e.address: e for e in entry.endpoints}
        kept = [e for e in entry.endpoints if e.address in addresses]
        for gone in (e for a, e in have.items() if a not in addresses):
            logger.info(
                "model %s: %s no longer resolves to %s",
                model,
                self._discovered[model],
                gone.address,
                extra={"model": model, "address": gone.address},
            )
            self._close(gone, later=True)
        for address in addresses:
            if address not in have:
                logger.info(
                    "model %s: a replica at %s",
                    model,
                    address,
                    extra={"model": model, "address": address},
                )
                # not picked before its first SERVING answer: a new task of a service
                # may be in its DNS name before it has loaded its model
                health = Probed.NOT_SERVING if self._probe else Probed.UNKNOWN
                kept.append(self._open(model, address, health, address))
        entry.slots = list(kept)
        entry.downs = [""] * len(kept)
        entry.down = "" if kept else f"({self._discovered[model]} resolves to no address)"
        if entry.serving != before:
            self._changed()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (on the loop) after a model's availability changes."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def _open(self, model: str, address: str, health: Probed, replica: str) -> Endpoint:
        channel = open_aio_channel(address, self._tls.get(model), self._options)
        endpoint = Endpoint(model, address, channel, health, replica)
        if self._probe:
            endpoint.probe = HealthProbe(
                address,
                on_change=lambda state: self._threadsafe(self._probed, endpoint, state),
                on_unresponsive=lambda: self._unresponsive(endpoint),
                liveness=self.liveness,
                tls=self._tls.get(model),
            ).start()
        return endpoint

    def _threadsafe(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: we are stopping
                loop.call_soon_threadsafe(fn, *args)

    def _probed(self, endpoint: Endpoint, state: Probed) -> None:
        entry = self.models[endpoint.model]
        if endpoint not in entry.slots:
            return  # replaced meanwhile
        if state is endpoint.health:
            return
        before = entry.serving
        first = state.serving and not endpoint.served
        if state.serving and endpoint.health is Probed.UNREACHABLE:
            self._reconnect(endpoint)
        if state.serving:
            endpoint.served = True
        endpoint.health = state
        log = logger.debug if first else logger.info if state.serving else logger.warning
        log(
            "model %s at %s: %s",
            endpoint.model,
            endpoint.address,
            state.value,
            extra={"model": endpoint.model, "address": endpoint.address, "health": state.value},
        )
        if entry.serving != before:
            self._changed()

    def _reconnect(self, endpoint: Endpoint) -> None:
        # back after refusing connections: the probe reached it on a channel of its own,
        # while the router's may sit in reconnect backoff (up to 2 s) failing every call
        # at once; a fresh channel reaches it now (calls on the old one finish or fail)
        old = endpoint.channel
        endpoint.channel = open_aio_channel(
            endpoint.address, self._tls.get(endpoint.model), self._options
        )
        endpoint._calls.clear()
        task = asyncio.ensure_future(old.close(grace=_DRAIN_SECONDS))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _unresponsive(self, endpoint: Endpoint) -> None:
        if self.on_unresponsive is not None:
            self.on_unresponsive(endpoint.model, endpoint.address)

    def replace(self, model: str, address: str | None, why: str = "", replica: int = 0) -> None:
        """Replica `replica` of `model` serves at `address` now (a new endpoint, SERVING:
        its supervisor waited for that), instead of where it did; or, with None, it is
        down, and `why`.

        Call on the loop (`replace_threadsafe` from elsewhere).
        """
        entry = self.models[model]
        old = entry.slots[replica]
        if old is not None:
            self._close(old)
        entry.slots[replica] = None
        entry.downs[replica] = why
        if address is not None:
            new = self._open(model, address, Probed.SERVING, str(replica + 1))
            new.served = True
            entry.slots[replica] = new
        self._changed()

    def replace_threadsafe(
        self, model: str, address: str | None, why: str = "", replica: int = 0
    ) -> None:
        """`replace`, from any thread (the supervisor's)."""
        self._threadsafe(self.replace, model, address, why, replica)

    def _close(self, endpoint: Endpoint, *, later: bool = False) -> None:
        if endpoint.probe is not None:
            endpoint.probe.stop()
        if later:
            self._draining.add(endpoint)
        task = asyncio.ensure_future(self._close_channel(endpoint, later))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_channel(self, endpoint: Endpoint, later: bool) -> None:
        if later:
            # an address gone from DNS may still be serving calls sent to it before:
            # they get a while to finish (closing a channel cancels its calls)
            await asyncio.sleep(_DRAIN_SECONDS)
            self._draining.discard(endpoint)
        # calls still in flight on a model that is gone fail on their own
        await endpoint.channel.close()

    async def close(self) -> None:
        """Stop every probe and resolver and close every channel."""
        for task in self._resolvers:
            task.cancel()
        await asyncio.gather(*self._resolvers, return_exceptions=True)
        for entry in self.models.values():
            for e in entry.endpoints:
                if e.probe is not None:
                    e.probe.stop()
            await asyncio.gather(*(e.channel.close() for e in entry.endpoints))
            entry.slots = [None] * len(entry.slots)
        for task in self._closing:
            task.cancel()
        await asyncio.gather(*(e.channel.close() for e in self._draining))
        self._draining.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

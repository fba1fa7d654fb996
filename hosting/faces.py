"""The faces of a service host: the listeners it starts and stops, and the serving state
they all read.

A face is any listener with three hooks, called by the host in this order: `start()`
(bind and listen; ConfigError naming the setting if it cannot), `set_serving(True)` once
the host is SERVING, `set_serving(False)` when it begins draining, `stop(grace)`; and
its `announcement()`, the stable line saying where it listens. The gRPC face
(`modelwire.hosting.grpc_face`) reports the state through grpc.health.v1; the HTTP face
(`modelwire.hosting.http_host`) reads `ServingState.ready` for /readyz. Nothing here
binds or serves.

Besides its life (`Serving`), the state holds the readiness of named *parts* of what is
served: a solution's methods, each ready only while the models it calls are. A process
that is alive and SERVING can so be not ready for a dependency's sake, while the drain
states keep their meaning (a draining host is never ready, whatever its parts say).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["AioFace", "Face", "Serving", "ServingState"]


class Serving(enum.Enum):
    """Where a host is in its life."""

    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"  # NOT_SERVING: in-flight calls finish, new ones may be refused
    STOPPED = "stopped"


class ServingState:
    """The host's state, shared by its faces (gRPC health follows it; /readyz reads it).

    Its life only moves forward: STARTING -> SERVING -> DRAINING -> STOPPED. Its parts
    (`set_part`) move both ways: a part is ready, or not and why. Listeners
    (`subscribe`) are called after every change, in the thread that made it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = Serving.STARTING
        self._parts: dict[str, str | None] = {}  # part -> None when ready, else why not
        self._listeners: list[Callable[[], None]] = []

    @property
    def status(self) -> Serving:
        return self._status

    @property
    def ready(self) -> bool:
        """Whether new calls are welcome: SERVING, and every part ready."""
        with self._lock:
            return self._status is Serving.SERVING and all(
                why is None for why in self._parts.values()
            )

    def advance(self, status: Serving) -> bool:
        """Move to `status` if it is ahead; whether it moved (so one caller drains)."""
        order = list(Serving)
        with self._lock:
            if order.index(status) <= order.index(self._status):
                return False
            self._status = status
        self._changed()
        return True

    def set_part(self, name: str, ready: bool, why: str = "") -> bool:
        """Part `name` of what is served (e.g. one method of a solution) is ready or not.

        Args:
            name: the part; gRPC health reports it under this name.
            ready: whether calls of the part can be served now.
            why: what keeps it from being ready (e.g. the model it needs is down).

        Returns:
            Whether the part's readiness changed (a new part counts as a change).
        """
        reason = None if ready else (why or "not ready")
        with self._lock:
            before = self._parts.get(name, "")  # "" never equals a state: new parts change
            self._parts[name] = reason
            changed = (before is None) != (reason is None) or before == ""
        if changed:
            self._changed()
        return changed

    def part_ready(self, name: str) -> bool:
        """Whether part `name` is ready and the host SERVING (False for an unknown part)."""
        with self._lock:
            return self._status is Serving.SERVING and self._parts.get(name, "") is None

    @property
    def parts(self) -> dict[str, str | None]:
        """Every part: None when ready, else why not."""
        with self._lock:
            return dict(self._parts)

    @property
    def not_ready(self) -> dict[str, str]:
        """The parts that are not ready, and why (empty when every part is ready)."""
        with self._lock:
            return {name: why for name, why in self._parts.items() if why is not None}

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every change of the life or of a part's readiness."""
        with self._lock:
            self._listeners.append(listener)

    def _changed(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


class Face(Protocol):
    """A listener of a sync host: the gRPC server, the HTTP face.

    `port` is the bound port once `start()` returned.
    """

    port: int

    def announcement(self) -> str:
        """Once started: the line telling tools where it listens, e.g.
        `modelwire runtime http on 127.0.0.1:8080`; '' for none (the host announces the
        gRPC face's address itself, last)."""

    def start(self) -> None:
        """Bind and listen (ConfigError naming the setting if it cannot)."""

    def set_serving(self, serving: bool) -> None:
        """The host became SERVING (True) or began draining (False)."""

    def stop(self, grace: float | None) -> None:
        """Let in-flight calls finish (up to `grace` s; None: no limit) and close."""


class AioFace(Protocol):
    """A listener of an asyncio host: the hooks of `Face`, awaited on the host's loop."""

    port: int

    def announcement(self) -> str: ...

    async def start(self) -> None: ...

    async def set_serving(self, serving: bool) -> None: ...

    async def stop(self, grace: float | None) -> None: ...

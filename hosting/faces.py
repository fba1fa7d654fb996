"""The faces of a service host: the listeners it starts and stops, and the serving state
they all read.

A face is any listener with three hooks, called by the host in this order: `start()`
(bind and listen; ConfigError naming the setting if it cannot), `set_serving(True)` once
the host is SERVING, `set_serving(False)` when it begins draining, `stop(grace)`; and
its `announcement()`, the stable line saying where it listens. The gRPC face
(`modelwire.hosting.grpc_face`) reports the state through grpc.health.v1; the HTTP face
(`modelwire.hosting.http_host`) reads `ServingState.ready` for /readyz. Nothing here
binds or serves.
"""

from __future__ import annotations

import enum
import threading
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

    It only moves forward: STARTING -> SERVING -> DRAINING -> STOPPED.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = Serving.STARTING

    @property
    def status(self) -> Serving:
        return self._status

    @property
    def ready(self) -> bool:
        """Whether new calls are welcome (SERVING)."""
        return self._status is Serving.SERVING

    def advance(self, status: Serving) -> bool:
        """Move to `status` if it is ahead; whether it moved (so one caller drains)."""
        order = list(Serving)
        with self._lock:
            if order.index(status) <= order.index(self._status):
                return False
            self._status = status
            return True


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

"""`grpc.health.v1` servicers whose Watch streams end on graceful shutdown."""

from __future__ import annotations

from typing import Any

from grpc_health.v1 import _async as health_aio
from grpc_health.v1 import health, health_pb2

__all__ = ["HEALTH_SERVICE", "AioHealthServicer", "HealthServicer"]

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class HealthServicer(health.HealthServicer):  # type: ignore[misc]  # grpc_health is untyped
    """The sync servicer; `enter_graceful_shutdown()` also ends the Watch streams.

    grpcio-health-checking sends NOT_SERVING to watchers on graceful shutdown but
    keeps their streams open, so a single Watch (a load balancer, a mesh sidecar)
    made every SIGTERM wait the whole grace period.
    """

    def enter_graceful_shutdown(self) -> None:
        # Sends NOT_SERVING to every watcher; each send blocks until it is written.
        super().enter_graceful_shutdown()
        with self._lock:
            callbacks = [
                cb for cbs in getattr(self, "_send_response_callbacks", {}).values() for cb in cbs
            ]
        for callback in callbacks:
            callback(None)  # ends the stream with OK


class AioHealthServicer(health_aio.HealthServicer):  # type: ignore[misc]
    """The asyncio servicer; a Watch returns once it has reported NOT_SERVING in shutdown."""

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        condition = self._server_watchers[request.service]
        self._watcher_count_by_service[request.service] += 1
        last = None
        try:
            async with condition:
                while True:
                    status = self._server_status.get(
                        request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
                    )
                    if status != last:
                        await context.write(health_pb2.HealthCheckResponse(status=status))
                    last = status
                    if self._gracefully_shutting_down:
                        return
                    await condition.wait()
        finally:
            self._watcher_count_by_service[request.service] -= 1
            if self._watcher_count_by_service[request.service] == 0:
                del self._server_watchers[request.service]
                del self._watcher_count_by_service[request.service]

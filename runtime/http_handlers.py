"""The HTTP face's handlers for a model service (`modelwire.hosting.http_face`).

`ModelService` gives grpcio handlers (request bytes and a servicer context, errors
aborted as statuses); the HTTP face takes plain callables
`(request bytes, deadline) -> reply bytes` (or coroutine functions, on an event loop)
that raise `modelwire.errors` domain errors, which it maps through
`modelwire.hosting.status.status_of`. This adapter makes those from the same
`ModelService` and its one call path (`ModelService.call`, `call_async` on a loop), so
one decoded schema, one codec, one model object and a batched method's one queue serve
both faces. It records no metrics and logs nothing: the face does.
"""

from __future__ import annotations

from modelwire.hosting.http_calls import AsyncUnaryHandler, UnaryHandler
from modelwire.runtime.service import ModelService

__all__ = ["async_unary_handlers", "unary_handlers"]


def unary_handlers(service: ModelService) -> dict[str, UnaryHandler]:
    """rpc name -> handler, for every method of `service` (a threaded face)."""
    return {rpc.rpc: _handler(service, rpc.name) for rpc in service.rpcs}


def async_unary_handlers(service: ModelService) -> dict[str, AsyncUnaryHandler]:
    """rpc name -> coroutine handler, for a face on the event loop of an aio server: an
    unbatched method runs on the loop, as over gRPC; a batched one awaits its batch
    without blocking the loop."""
    return {rpc.rpc: _async_handler(service, rpc.name) for rpc in service.rpcs}


def _handler(service: ModelService, method: str) -> UnaryHandler:
    def handle(request: bytes, deadline: float | None) -> bytes:
        return service.call(method, request, deadline)

    return handle


def _async_handler(service: ModelService, method: str) -> AsyncUnaryHandler:
    async def handle(request: bytes, deadline: float | None) -> bytes:
        return await service.call_async(method, request, deadline)

    return handle

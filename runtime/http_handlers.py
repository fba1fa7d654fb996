"""A loaded model's methods as the HTTP face's unary handlers: bytes in, bytes out.

`ModelService` gives grpcio handlers (request bytes and a servicer context, errors
aborted as statuses); the HTTP face takes plain callables
`(request bytes, deadline) -> reply bytes` that raise `modelwire.errors` domain errors,
which it maps through `modelwire.hosting.status.status_of`. This adapter makes those
from the same `ModelService` and its one call path (`ModelService.call`), so one decoded
schema, one codec, one model object and a batched method's one queue serve both faces.
It records no metrics and logs nothing: the face does.
"""

from __future__ import annotations

from modelwire.hosting.http_calls import UnaryHandler
from modelwire.runtime.service import ModelService

__all__ = ["unary_handlers"]


def unary_handlers(service: ModelService) -> dict[str, UnaryHandler]:
    """rpc name -> handler, for every method of `service`."""
    return {rpc.rpc: _handler(service, rpc.name) for rpc in service.rpcs}


def _handler(service: ModelService, method: str) -> UnaryHandler:
    def handle(request: bytes, deadline: float | None) -> bytes:
        return service.call(method, request, deadline)

    return handle

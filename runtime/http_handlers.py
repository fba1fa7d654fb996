"""A loaded model's methods as the HTTP face's unary handlers: bytes in, bytes out.

`ModelService` gives grpcio handlers (request bytes and a servicer context, errors
aborted as statuses); the HTTP face takes plain callables
`(request bytes, deadline) -> reply bytes` that raise `modelwire.errors` domain errors,
which it maps through `modelwire.hosting.status.status_of`. Each handler made here is
`ModelService.call` for one method, the call path the gRPC handlers use too, so one
decoded schema, one codec and one model object serve both faces. It records no metrics
and logs nothing: the face does.
"""

from __future__ import annotations

import functools

from modelwire.hosting.http_calls import UnaryHandler
from modelwire.runtime.service import ModelService

__all__ = ["unary_handlers"]


def unary_handlers(service: ModelService) -> dict[str, UnaryHandler]:
    """rpc name -> handler, for every method of `service`."""
    return {rpc.rpc: functools.partial(service.call, rpc.name) for rpc in service.rpcs}

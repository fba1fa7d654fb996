"""A loaded model's methods as the HTTP face's unary handlers: bytes in, bytes out.

`ModelService` gives grpcio handlers (request bytes and a servicer context, errors
aborted as statuses); the HTTP face takes plain callables
`(request bytes, deadline) -> reply bytes` that raise `modelwire.errors` domain errors,
which it maps through `modelwire.hosting.status.status_of`. This adapter makes those
from the same `ModelService`, so one decoded schema, one codec and one model object
serve both faces. It records no metrics and logs nothing: the face does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelwire.codegen.values import DecodeError, EncodeError, MethodCodec
from modelwire.errors import BadResult, InvalidRequest, ModelFailed, TooLarge
from modelwire.hosting.http_calls import UnaryHandler
from modelwire.runtime.service import ModelService

__all__ = ["unary_handlers"]


def unary_handlers(service: ModelService) -> dict[str, UnaryHandler]:
    """rpc name -> handler, for every method of `service`."""
    return {
        rpc.rpc: _handler(rpc.name, rpc.fn, rpc.codec, service.max_message_bytes)
        for rpc in service.rpcs
    }


def _handler(
    name: str, fn: Callable[..., Any], codec: MethodCodec, limit: int | None
) -> UnaryHandler:
    def handle(request: bytes, deadline: float | None) -> bytes:
        try:
            args, kwargs = codec.decode_request(request)
        except DecodeError as exc:
            raise InvalidRequest(f"{name}: invalid request: {exc}") from exc
        try:
            result = fn(*args, **kwargs)
        except (Exception, SystemExit) as exc:
            # sys.exit() in a model must not end the server
            raise ModelFailed(name, exc) from exc
        try:
            reply: bytes = codec.encode_response(result)
        except EncodeError as exc:
            raise BadResult(name, str(exc)) from exc
        if limit is not None and len(reply) > limit:
            raise TooLarge(
                f"{name}: the reply is {len(reply)} bytes, over the server's limit of {limit} "
                "bytes (modelwire serve --max-message-mb)",
                size=len(reply),
                limit=limit,
            )
        return reply

    return handle

"""A loaded model as gRPC method handlers: decode, call, encode, and answer failures.

Requests and responses cross grpcio as raw bytes (no (de)serializers), so that
decoding happens here, where a malformed request becomes INVALID_ARGUMENT
rather than grpcio's generic INTERNAL. The call path raises the errors of
`modelwire.errors` (InvalidRequest, ModelFailed, BadResult, TooLarge) and never
chooses a status: `modelwire.hosting.status.status_of` does, as for every server.
`ModelService.call` is that path, the only one: the gRPC handlers here and the HTTP
face (`modelwire.runtime.http_handlers`) both call it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2

from modelwire.bundle import LoadedModel
from modelwire.codegen.descriptors import MessageClasses, file_descriptor, message_classes
from modelwire.codegen.values import DecodeError, EncodeError, MethodCodec, ValueCodec
from modelwire.errors import BadResult, InvalidRequest, ModelFailed, NotFound, TooLarge
from modelwire.hosting.metrics import Metrics
from modelwire.hosting.status import status_of

__all__ = ["ModelService"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("modelwire.runtime.access")


@dataclass(frozen=True)
class _Rpc:
    name: str  # the Python method name
    rpc: str
    fn: Callable[..., Any]
    codec: MethodCodec


class ModelService:
    """The gRPC face of one loaded model.

    Args:
        loaded: the model, from `modelwire.bundle.load()`.
        metrics: where to count calls; None records nothing.
        access_log: log one INFO line per call.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        metrics: Metrics | None = None,
        *,
        access_log: bool = False,
        max_message_bytes: int | None = None,
    ) -> None:
        self.loaded = loaded
        self.schema = loaded.schema
        self.file: descriptor_pb2.FileDescriptorProto = file_descriptor(loaded.schema)
        self.classes: MessageClasses = message_classes(self.file)
        self.codec = ValueCodec(loaded.schema, self.classes, loaded.binding)
        self.metrics = metrics
        self.access_log = access_log
        self.max_message_bytes = max_message_bytes
        self.service_name = f"{self.schema.package}.{self.schema.service}"
        self.rpcs = [
            _Rpc(m.name, m.rpc, loaded.model.methods[m.name], self.codec.method(m.name))
            for m in self.schema.methods
        ]
        self._by_name = {r.name: r for r in self.rpcs}

    # ------------------------------------------------------------ the call path

    def call(self, method: str, request: bytes, deadline: float | None = None) -> bytes:
        """One call of `method`: decode the request, call the model, encode, check the size.

        Args:
            method: the model's method name (``'classify'``, not the rpc's).
            request: the request message's bytes.
            deadline: when the caller stops waiting, a `time.monotonic()` instant, or None.
                A direct call runs at once and the face enforces the deadline; it is
                passed so that a call path that queues calls can drop a late one.

        Returns:
            The response message's bytes.

        Raises:
            InvalidRequest: the request does not decode (the message names the field).
            ModelFailed: the model raised.
            BadResult: the model's return value does not encode as the response.
            TooLarge: the reply is over the server's message limit.
            NotFound: the model has no method `method`.
        """
        rpc = self._by_name.get(method)
        if rpc is None:
            raise NotFound(f"{self.service_name} has no method {method!r}", subject=method)
        try:
            args, kwargs = rpc.codec.decode_request(request)
        except DecodeError as exc:
            # the codec names the field; only the runtime knows the method
            raise InvalidRequest(f"{rpc.name}: invalid request: {exc}", subject=rpc.name) from exc
        try:
            result = rpc.fn(*args, **kwargs)
        except (Exception, SystemExit) as exc:
            # sys.exit() in a model must not end the server (aio) or hang the call (sync)
            raise ModelFailed(rpc.name, exc) from exc
        try:
            reply = rpc.codec.encode_response(result)
        except EncodeError as exc:
            raise BadResult(rpc.name, str(exc)) from exc
        limit = self.max_message_bytes
        if limit is not None and len(reply) > limit:
            raise TooLarge(
                f"{rpc.name}: the reply is {len(reply)} bytes, over the server's limit of "
                f"{limit} bytes (modelwire serve --max-message-mb)",
                size=len(reply),
                limit=limit,
                subject=rpc.name,
            )
        return reply

    def _failed(self, rpc: _Rpc, exc: BaseException) -> tuple[grpc.StatusCode, str]:
        status = status_of(exc, rpc.name)
        if status.internal:
            # the traceback worth reading is the model's (or the codec's), not our wrapper's
            cause: BaseException = exc
            if isinstance(exc, ModelFailed):
                cause = exc.cause
            elif isinstance(exc, BadResult) and exc.__cause__ is not None:
                cause = exc.__cause__
            logger.error(
                "%s failed: %s",
                rpc.name,
                status.message,
                exc_info=(type(cause), cause, cause.__traceback__),
                extra={"rpc": rpc.rpc, "status": status.code.name},
            )
        return status.code, status.message

    def _record(self, rpc: _Rpc, code: str, t0: float, nreq: int, nresp: int) -> None:
        seconds = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.observe(rpc.name, code, seconds, nreq, nresp)
        if self.access_log:
            access_logger.info(
                "%s %s %.2f ms",
                rpc.rpc,
                code,
                seconds * 1e3,
                extra={"rpc": rpc.rpc, "status": code, "ms": round(seconds * 1e3, 3)},
            )

    def sync_handler(self, rpc: _Rpc) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            t0 = time.perf_counter()
            try:
                reply = self.call(rpc.name, request, _deadline(context))
            except Exception as exc:
                code, message = self._failed(rpc, exc)
                self._record(rpc, code.name, t0, len(request), 0)
                context.abort(code, message)
            self._record(rpc, "OK", t0, len(request), len(reply))
            return reply

        return handle

    def aio_handler(self, rpc: _Rpc) -> Callable[[bytes, Any], Any]:
        async def handle(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            t0 = time.perf_counter()
            try:
                reply = self.call(rpc.name, request, _deadline(context))
            except Exception as exc:
                code, message = self._failed(rpc, exc)
                self._record(rpc, code.name, t0, len(request), 0)
                await context.abort(code, message)
            self._record(rpc, "OK", t0, len(request), len(reply))
            return reply

        return handle

    def generic_handler(self, *, aio: bool = False) -> grpc.GenericRpcHandler:
        make = self.aio_handler if aio else self.sync_handler
        return grpc.method_handlers_generic_handler(
            self.service_name,
            {r.rpc: grpc.unary_unary_rpc_method_handler(make(r)) for r in self.rpcs},
        )


_NO_DEADLINE = 1e9  # seconds: the sync server says ~9.2e18 where the client set no deadline


def _deadline(context: Any) -> float | None:
    """The gRPC call's deadline as a `time.monotonic()` instant (None: the client set none)."""
    remaining = context.time_remaining()
    if remaining is None or remaining > _NO_DEADLINE:
        return None
    return time.monotonic() + float(remaining)

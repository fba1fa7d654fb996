"""A loaded model as gRPC method handlers: decode, call, encode, and map errors.

Requests and responses cross grpcio as raw bytes (no (de)serializers), so that
decoding happens here, where a malformed request becomes INVALID_ARGUMENT
rather than grpcio's generic INTERNAL. `status_for()` is the one place where
exceptions become gRPC statuses.
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
from modelwire.hosting.metrics import Metrics

__all__ = ["ModelService", "status_for"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("modelwire.runtime.access")

_MAX_DETAIL = 1000


class _ModelFailed(Exception):
    """The model raised; carries the method name for the status message."""

    def __init__(self, method: str, cause: BaseException) -> None:
        self.method = method
        self.cause = cause
        super().__init__(method)


class _BadResult(Exception):
    def __init__(self, method: str, cause: EncodeError) -> None:
        self.method = method
        self.cause = cause
        super().__init__(method)


class _TooLarge(Exception):
    def __init__(self, method: str, size: int, limit: int) -> None:
        self.method = method
        self.size = size
        self.limit = limit
        super().__init__(method)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


def status_for(exc: BaseException, method: str) -> tuple[grpc.StatusCode, str]:
    """The status and message a client sees for an exception raised while serving `method`.

    Tracebacks never leave the server; a model's ValueError/TypeError text is
    passed on (it usually says what was wrong with the request), other model
    exceptions only by their type.
    """
    if isinstance(exc, DecodeError):
        return grpc.StatusCode.INVALID_ARGUMENT, _clip(f"{method}: invalid request: {exc}")
    if isinstance(exc, _ModelFailed):
        cause = exc.cause
        if isinstance(cause, ValueError | TypeError):
            return grpc.StatusCode.INVALID_ARGUMENT, _clip(
                f"{method}: the model rejected the request: {type(cause).__name__}: {cause}"
            )
        return grpc.StatusCode.INTERNAL, (
            f"{method}: the model raised {type(cause).__name__}; "
            "the traceback is in the server's log"
        )
    if isinstance(exc, _BadResult):
        return grpc.StatusCode.INTERNAL, _clip(
            f"{method}: the model returned a value that does not fit its declared response: "
            f"{exc.cause}"
        )
    if isinstance(exc, _TooLarge):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, (
            f"{method}: the reply is {exc.size} bytes, over the server's limit of {exc.limit} "
            "bytes (modelwire serve --max-message-mb)"
        )
    return grpc.StatusCode.INTERNAL, f"{method}: internal error; see the server's log"


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

    # ------------------------------------------------------------ the call path

    def _call(self, rpc: _Rpc, request: bytes) -> bytes:
        args, kwargs = rpc.codec.decode_request(request)
        try:
            result = rpc.fn(*args, **kwargs)
        except (Exception, SystemExit) as exc:
            # sys.exit() in a model must not end the server (aio) or hang the call (sync)
            raise _ModelFailed(rpc.name, exc) from exc
        try:
            reply = rpc.codec.encode_response(result)
        except EncodeError as exc:
            raise _BadResult(rpc.name, exc) from exc
        if self.max_message_bytes is not None and len(reply) > self.max_message_bytes:
            raise _TooLarge(rpc.name, len(reply), self.max_message_bytes)
        return reply

    def _failed(self, rpc: _Rpc, exc: BaseException) -> tuple[grpc.StatusCode, str]:
        code, message = status_for(exc, rpc.name)
        if code is grpc.StatusCode.INTERNAL:
            cause = exc.cause if isinstance(exc, _ModelFailed | _BadResult) else exc
            logger.error(
                "%s failed: %s",
                rpc.name,
                message,
                exc_info=(type(cause), cause, cause.__traceback__),
                extra={"rpc": rpc.rpc, "status": code.name},
            )
        return code, message

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
                reply = self._call(rpc, request)
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
                reply = self._call(rpc, request)
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

"""A loaded model as gRPC method handlers: decode, call, encode, and answer failures.

Requests and responses cross grpcio as raw bytes (no (de)serializers), so that
decoding happens here, where a malformed request becomes INVALID_ARGUMENT
rather than grpcio's generic INTERNAL. The call path raises the errors of
`modelwire.errors` (InvalidRequest, ModelFailed, BadResult, TooLarge,
DeadlineExceeded, Cancelled) and never chooses a status:
`modelwire.hosting.status.status_of` does, as for every server.

`ModelService.call` (and `call_async`, for an event loop) is the one call path, used by
the gRPC handlers and the HTTP face. A batched method's calls go through its `Batcher`
(`modelwire.runtime.batching`) between decoding and encoding: each request decodes
and encodes on its own, so a malformed one fails alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pb2

from modelwire.bundle import LoadedModel
from modelwire.bundle.batching import BatchedMethod, BatchPolicy
from modelwire.codegen.descriptors import MessageClasses, file_descriptor, message_classes
from modelwire.codegen.values import DecodeError, EncodeError, MethodCodec, ValueCodec
from modelwire.errors import BadResult, InvalidRequest, ModelFailed, NotFound, TooLarge
from modelwire.hosting.metrics import Metrics
from modelwire.hosting.status import status_of
from modelwire.runtime.batching import Batcher, CallState

__all__ = ["ModelService"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("modelwire.runtime.access")


@dataclass(frozen=True)
class _Rpc:
    name: str  # the Python method name
    rpc: str
    fn: Callable[..., Any]
    codec: MethodCodec
    batcher: Batcher | None = None  # a batched method's queue


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
            self._rpc(m.name, m.rpc, loaded.model.methods[m.name]) for m in self.schema.methods
        ]
        self._by_name = {r.name: r for r in self.rpcs}

    def _rpc(self, name: str, rpc: str, fn: Callable[..., Any]) -> _Rpc:
        codec = self.codec.method(name)
        if not isinstance(fn, BatchedMethod):
            return _Rpc(name, rpc, fn, codec)
        observe = None
        if self.metrics is not None:
            metrics = self.metrics
            metrics.declare_batched(name)

            def observe(size: int, waits: Sequence[float]) -> None:
                metrics.observe_batch(name, size, waits)

        params = codec.method.params
        batcher = Batcher(name, fn.batch, fn.policy, keywords=params, observe=observe)
        return _Rpc(name, rpc, fn, codec, batcher)

    @property
    def batching(self) -> dict[str, BatchPolicy]:
        """The batched methods' policies, by method name."""
        return {r.name: r.batcher.policy for r in self.rpcs if r.batcher is not None}

    def close(self) -> None:
        """Let the batchers' threads end once idle."""
        for r in self.rpcs:
            if r.batcher is not None:
                r.batcher.close()

    # ------------------------------------------------------------ the call path

    def call(
        self,
        method: str,
        request: bytes,
        deadline: float | None = None,
        *,
        state: CallState | None = None,
    ) -> bytes:
        """Serve one request of `method` (its Python name) from a thread: reply bytes.

        Args:
            method: the method's Python name (`classify`, not the rpc's `Classify`).
            request: the request message's bytes.
            deadline: a `time.monotonic()` instant, or None; a batched call still
                queued when it passes is answered DeadlineExceeded, unrun.
            state: a batched call's cancellation hook and batch facts.

        Raises:
            NotFound: no such method.
            InvalidRequest, ModelFailed, BadResult, TooLarge, DeadlineExceeded,
            Cancelled: the request failed; `status_of` says how to answer.
        """
        return self._call(self._method(method), request, deadline, state)

    async def call_async(
        self,
        method: str,
        request: bytes,
        deadline: float | None = None,
        *,
        state: CallState | None = None,
    ) -> bytes:
        """`call` on an event loop: an unbatched method runs on the loop, as it always
        has; a batched one waits for its batch without blocking the loop."""
        return await self._call_async(self._method(method), request, deadline, state)

    def call_values(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        deadline: float | None = None,
    ) -> Any:
        """`call` with the request already decoded and the reply left unencoded: what
        the model's function returns (a fused step's call, `modelwire.broker.fused`).

        Raises:
            NotFound, ModelFailed, DeadlineExceeded, Cancelled: as `call`.
        """
        rpc = self._method(method)
        if rpc.batcher is not None:
            item = args[0] if rpc.codec.method.params is None else kwargs
            return rpc.batcher.call(item, deadline, None)
        try:
            return rpc.fn(*args, **kwargs)
        except (Exception, SystemExit) as exc:
            raise ModelFailed(rpc.name, exc) from exc

    def decode_request(self, method: str, request: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Request bytes of `method` -> the arguments of its function.

        Raises:
            NotFound: no such method. InvalidRequest: the bytes do not fit.
        """
        rpc = self._method(method)
        try:
            return rpc.codec.decode_request(request)
        except DecodeError as exc:
            raise InvalidRequest(f"{rpc.name}: invalid request: {exc}", subject=rpc.name) from exc

    def encode_reply(self, method: str, value: Any) -> bytes:
        """What `method`'s function returned -> reply bytes.

        Raises:
            NotFound: no such method. BadResult, TooLarge: as `call`.
        """
        return self._encode(self._method(method), value)

    def failed(self, method: str, exc: BaseException) -> tuple[grpc.StatusCode, str]:
        """The status a call of `method` that raised `exc` is answered with; the
        traceback of an internal failure is logged here, once."""
        return self._failed(self._method(method), exc)

    def _method(self, method: str) -> _Rpc:
        try:
            return self._by_name[method]
        except KeyError:
            raise NotFound(
                f"the model has no method {method!r}; it has {', '.join(self._by_name)}",
                subject=method,
            ) from None

    def _call(
        self, rpc: _Rpc, request: bytes, deadline: float | None, state: CallState | None
    ) -> bytes:
        if rpc.batcher is not None:
            result = rpc.batcher.call(self._decode(rpc, request), deadline, state)
            return self._encode(rpc, result)
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
        return self._encode(rpc, result)

    async def _call_async(
        self, rpc: _Rpc, request: bytes, deadline: float | None, state: CallState | None
    ) -> bytes:
        if rpc.batcher is None:
            return self._call(rpc, request, deadline, state)
        item = self._decode(rpc, request)
        return self._encode(rpc, await rpc.batcher.call_async(item, deadline, state))

    def _decode(self, rpc: _Rpc, request: bytes) -> Any:
        """A batched method's request: its one value, or {parameter: value}."""
        try:
            args, kwargs = rpc.codec.decode_request(request)
        except DecodeError as exc:
            raise InvalidRequest(f"{rpc.name}: invalid request: {exc}", subject=rpc.name) from exc
        return args[0] if rpc.codec.method.params is None else kwargs

    def _encode(self, rpc: _Rpc, result: Any) -> bytes:
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

    def _record(
        self, rpc: _Rpc, code: str, t0: float, nreq: int, nresp: int, batch: int = 0
    ) -> None:
        seconds = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.observe(rpc.name, code, seconds, nreq, nresp)
        if self.access_log:
            ms = seconds * 1e3
            extra = {"rpc": rpc.rpc, "status": code, "ms": round(ms, 3)}
            if rpc.batcher is None:
                access_logger.info("%s %s %.2f ms", rpc.rpc, code, ms, extra=extra)
            else:  # 0: it never ran (its deadline passed, or it was cancelled, while queued)
                access_logger.info(
                    "%s %s %.2f ms batch %d",
                    rpc.rpc,
                    code,
                    ms,
                    batch,
                    extra={**extra, "batch": batch},
                )

    def sync_handler(self, rpc: _Rpc) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        if rpc.batcher is not None:
            return self._sync_batched_handler(rpc)

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            t0 = time.perf_counter()
            try:
                reply = self._call(rpc, request, None, None)
            except Exception as exc:
                code, message = self._failed(rpc, exc)
                self._record(rpc, code.name, t0, len(request), 0)
                context.abort(code, message)
            self._record(rpc, "OK", t0, len(request), len(reply))
            return reply

        return handle

    def _sync_batched_handler(self, rpc: _Rpc) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            t0 = time.perf_counter()
            state = CallState()
            if not context.add_callback(state.cancel):  # the call has ended already
                state.cancel()
            try:
                reply = self._call(rpc, request, _deadline(context), state)
            except Exception as exc:
                code, message = self._failed(rpc, exc)
                self._record(rpc, code.name, t0, len(request), 0, state.batch_size)
                context.abort(code, message)
            self._record(rpc, "OK", t0, len(request), len(reply), state.batch_size)
            return reply

        return handle

    def aio_handler(self, rpc: _Rpc) -> Callable[[bytes, Any], Any]:
        if rpc.batcher is not None:
            return self._aio_batched_handler(rpc)

        async def handle(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            t0 = time.perf_counter()
            try:
                reply = self._call(rpc, request, None, None)
            except Exception as exc:
                code, message = self._failed(rpc, exc)
                self._record(rpc, code.name, t0, len(request), 0)
                await context.abort(code, message)
            self._record(rpc, "OK", t0, len(request), len(reply))
            return reply

        return handle

    def _aio_batched_handler(self, rpc: _Rpc) -> Callable[[bytes, Any], Any]:
        async def handle(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            t0 = time.perf_counter()
            state = CallState()
            try:
                reply = await self._call_async(rpc, request, _deadline(context), state)
            except asyncio.CancelledError:  # grpcio cancels the task of a cancelled call
                self._record(rpc, "CANCELLED", t0, len(request), 0, state.batch_size)
                raise
            except Exception as exc:
                code, message = self._failed(rpc, exc)
                self._record(rpc, code.name, t0, len(request), 0, state.batch_size)
                await context.abort(code, message)
            self._record(rpc, "OK", t0, len(request), len(reply), state.batch_size)
            return reply

        return handle

    def generic_handler(self, *, aio: bool = False) -> grpc.GenericRpcHandler:
        make = self.aio_handler if aio else self.sync_handler
        return grpc.method_handlers_generic_handler(
            self.service_name,
            {r.rpc: grpc.unary_unary_rpc_method_handler(make(r)) for r in self.rpcs},
        )


_NO_DEADLINE = 1e7  # seconds; grpcio reports "no deadline" as a remaining time of ~1e10 s


def _deadline(context: Any) -> float | None:
    """The call's deadline as a `time.monotonic()` instant (None: it has none)."""
    remaining: float | None = context.time_remaining()
    if remaining is None or remaining > _NO_DEADLINE:
        return None
    return time.monotonic() + remaining

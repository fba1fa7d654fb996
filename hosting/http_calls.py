"""Run one unary handler for the HTTP face: deadline, thread or inline, error -> HTTP status.

The handler is the one the gRPC server calls (request bytes, deadline) -> reply bytes,
raising `modelwire.errors` domain errors: a plain function (a model's call path), or a
coroutine function (a solution's router), which always runs on the event loop. Its
exception becomes a gRPC status through `modelwire.hosting.status.status_of` (the one
mapping every server uses) and that status an HTTP one through Connect's table
(connectrpc.com/docs/protocol, "Error Codes"). A server-side failure is logged once,
with its traceback; the caller gets the status message only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import grpc

from modelwire.errors import ModelFailed
from modelwire.hosting.http_asgi import HttpError
from modelwire.hosting.status import Status, status_of

__all__ = ["CONNECT_CODES", "AsyncUnaryHandler", "CallRunner", "UnaryHandler", "http_error"]

logger = logging.getLogger(__name__)

UnaryHandler = Callable[[bytes, "float | None"], bytes]
"""(request bytes, deadline) -> reply bytes. The deadline is a `time.monotonic()` instant,
or None for none. Failures raise `modelwire.errors` domain errors."""

AsyncUnaryHandler = Callable[[bytes, "float | None"], Awaitable[bytes]]
"""The same, as a coroutine function (awaited on the face's event loop)."""

SC = grpc.StatusCode
CONNECT_CODES: dict[grpc.StatusCode, tuple[str, int]] = {
    SC.CANCELLED: ("canceled", 499),
    SC.UNKNOWN: ("unknown", 500),
    SC.INVALID_ARGUMENT: ("invalid_argument", 400),
    SC.DEADLINE_EXCEEDED: ("deadline_exceeded", 504),
    SC.NOT_FOUND: ("not_found", 404),
    SC.ALREADY_EXISTS: ("already_exists", 409),
    SC.PERMISSION_DENIED: ("permission_denied", 403),
    SC.RESOURCE_EXHAUSTED: ("resource_exhausted", 429),
    SC.FAILED_PRECONDITION: ("failed_precondition", 400),
    SC.ABORTED: ("aborted", 409),
    SC.OUT_OF_RANGE: ("out_of_range", 400),
    SC.UNIMPLEMENTED: ("unimplemented", 501),
    SC.INTERNAL: ("internal", 500),
    SC.UNAVAILABLE: ("unavailable", 503),
    SC.DATA_LOSS: ("data_loss", 500),
    SC.UNAUTHENTICATED: ("unauthenticated", 401),
}
"""gRPC code -> (Connect code, HTTP status): Connect's table, as in its protocol spec."""


def http_error(status: Status) -> HttpError:
    code, http_status = CONNECT_CODES.get(status.code, ("unknown", 500))
    return HttpError(http_status, code, status.message)


class CallRunner:
    """Calls handlers inline on the event loop or on a pool of threads.

    Args:
        threads: None runs each handler on the event loop (the aio gRPC server's way:
            least overhead, one call at a time); N runs them on N threads (the sync
            server's way: a slow call leaves health checks and other calls answered).
    """

    def __init__(self, threads: int | None) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 or None, got {threads}")
        self._pool = (
            ThreadPoolExecutor(threads, thread_name_prefix="modelwire-http")
            if threads is not None
            else None
        )

    async def call(
        self,
        handler: UnaryHandler | AsyncUnaryHandler,
        request: bytes,
        deadline: float | None,
        method: str,
        *,
        is_async: bool = False,
    ) -> bytes:
        """The handler's reply (`is_async`: the handler is a coroutine function).

        Raises:
            HttpError: the handler failed (mapped through `status_of`), or the deadline
                passed before it answered (504, deadline_exceeded).
        """
        try:
            if deadline is not None and time.monotonic() >= deadline:
                raise _late(method)
            if is_async:
                reply = await self._awaited(handler, request, deadline, method)
            elif self._pool is None:
                reply = cast(UnaryHandler, handler)(request, deadline)
            else:
                future = asyncio.get_running_loop().run_in_executor(
                    self._pool, cast(UnaryHandler, handler), request, deadline
                )
                if deadline is None:
                    reply = await future
                else:
                    try:
                        reply = await asyncio.wait_for(future, deadline - time.monotonic())
                    except TimeoutError:
                        raise _late(method) from None
            if deadline is not None and time.monotonic() > deadline:
                raise _late(method)
            return reply
        except HttpError:
            raise
        except Exception as exc:
            status = status_of(exc, method)
            if status.internal:
                cause = exc.cause if isinstance(exc, ModelFailed) else exc
                logger.error(
                    "%s failed: %s",
                    method,
                    status.message,
                    exc_info=(type(cause), cause, cause.__traceback__),
                    extra={"rpc": method, "status": status.code.name, "protocol": "http"},
                )
            raise http_error(status) from None

    @staticmethod
    async def _awaited(
        handler: Callable[..., Any], request: bytes, deadline: float | None, method: str
    ) -> bytes:
        if deadline is None:
            reply: bytes = await handler(request, deadline)
            return reply
        try:
            reply = await asyncio.wait_for(handler(request, deadline), deadline - time.monotonic())
        except TimeoutError:  # the handler's own work was cancelled with it
            raise _late(method) from None
        return reply

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _late(method: str) -> HttpError:
    return HttpError(504, "deadline_exceeded", f"{method}: the deadline passed before the reply")

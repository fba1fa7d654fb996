"""The HTTP face of one service: Connect, the Acumos contract, health, metrics and docs.

An ASGI application (raw ASGI, see `modelwire.hosting.http_asgi`) built from the
service's schema and the same unary handlers its gRPC server calls, so one loaded model
serves both. Routes, matched exactly:

    POST /<package>.<Service>/<Rpc>   Connect unary (modelwire.hosting.http_connect)
    POST /model/methods/<method>      the Acumos runner's contract (http_acumos)
    GET  /model/methods               the methods, as JSON
    GET  /model/info                  the manifest, as ModelInfoService gives it (when given)
    GET  /healthz                     200 SERVING while the process serves (liveness)
    GET  /readyz                      200 SERVING / 503 NOT_SERVING, from `ready()`
    GET  /metrics                     Prometheus text, from `metrics()` (when given)
    GET  /openapi.json                OpenAPI 3.1 (modelwire.codegen.openapi)
    GET  /docs                        an interactive page of the methods (http_docs)
    GET  /                            redirects to /docs

Anything else is 404 naming what exists (with a did-you-mean for a method), a wrong
HTTP method 405 with `Allow`. Every error answer is Connect's JSON error body. The
face binds nothing itself: `modelwire.hosting.http_server.HttpServer` serves it.

Example:
    >>> face = HttpFace(schema, {"Classify": handler}, ready=lambda: True)
    >>> server = HttpServer(face, "127.0.0.1", 8080)
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from modelwire.codegen.descriptors import MessageClasses
from modelwire.codegen.json_codec import JsonCodec, JsonError
from modelwire.codegen.json_scalars import did_you_mean
from modelwire.codegen.schema import Method, ModelSchema
from modelwire.errors import InvalidRequest
from modelwire.hosting import http_acumos, http_connect
from modelwire.hosting.http_asgi import (
    ClientGone,
    HttpError,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    error_response,
    read_body,
    request_of,
    send_response,
)
from modelwire.hosting.http_calls import AsyncUnaryHandler, CallRunner, UnaryHandler, http_error
from modelwire.hosting.http_docs import DocsPages
from modelwire.hosting.status import status_of

__all__ = ["DEFAULT_MAX_BODY", "AsyncUnaryHandler", "CallObserver", "HttpFace", "UnaryHandler"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("modelwire.hosting.http.access")

DEFAULT_MAX_BODY = 256 * 2**20  # as `modelwire serve --max-message-mb`'s default
_TEXT = "text/plain; charset=utf-8"
_JSON_MEDIA = {"json": "application/json", "proto": "application/proto"}
_GET = ("GET", "HEAD")


class CallObserver(Protocol):
    """Counts a call, as `Metrics.observe` does for gRPC, plus the protocol it came by.

    `method` is the model's method name, `code` the gRPC status code's name ('OK',
    'INVALID_ARGUMENT'), `protocol` 'connect' or 'acumos'; the bytes are the bodies'.
    """

    def __call__(
        self,
        method: str,
        code: str,
        seconds: float,
        request_bytes: int,
        response_bytes: int,
        protocol: str,
    ) -> None: ...


@dataclass(frozen=True)
class _Route:
    methods: tuple[str, ...]
    handle: Callable[[Request], Awaitable[Response]]
    method: Method | None = None  # the model method a call route serves
    protocol: str = ""


class HttpFace:
    """The ASGI app of one service's HTTP face.

    Args:
        schema: the service's schema (package, service, methods, messages).
        handlers: rpc name (``'Classify'``) -> the unary handler the gRPC server calls;
            one for every unary method of `schema`. A coroutine function is awaited on
            the event loop (whatever `threads` says).
        ready: whether the service is ready (loaded, not draining), for /readyz.
        observe: counts every call of a method.
        metrics: the Prometheus text (0.0.4) for /metrics; None serves no /metrics.
        max_body_bytes: the largest request body (after decompression); larger is 413.
        threads: None calls handlers on the event loop; N on a pool of N threads.
        classes: the schema's message classes, if the caller has them.
        version: the model's version, for the OpenAPI document.
        info: the manifest for /model/info (what ModelInfoService answers); None serves
            no /model/info.
        access_log: log one INFO line per request.

    Raises:
        ValueError: `handlers` lacks a method of the schema or has one it does not have.
    """

    def __init__(
        self,
        schema: ModelSchema,
        handlers: Mapping[str, UnaryHandler | AsyncUnaryHandler],
        *,
        ready: Callable[[], bool] | None = None,
        observe: CallObserver | None = None,
        metrics: Callable[[], bytes] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        threads: int | None = None,
        classes: MessageClasses | None = None,
        version: str = "",
        info: Mapping[str, Any] | None = None,
        access_log: bool = False,
    ) -> None:
        self.schema = schema
        self.service = f"{schema.package}.{schema.service}"
        self.methods = [m for m in schema.methods if not m.streaming]
        rpcs = {m.rpc for m in self.methods}
        if set(handlers) != rpcs:
            raise ValueError(
                f"handlers must cover the unary rpcs {sorted(rpcs)} exactly; got {sorted(handlers)}"
            )
        self.codec = JsonCodec(schema, classes)
        self.max_body_bytes = max_body_bytes
        self._handlers = dict(handlers)
        self._async = {rpc: inspect.iscoroutinefunction(h) for rpc, h in handlers.items()}
        self._info = orjson.dumps(dict(info)) if info is not None else None
        self._ready = ready or (lambda: True)
        self._observe = observe
        self._metrics = metrics
        self._runner = CallRunner(threads)
        self._access_log = access_log
        self._docs = DocsPages(schema, version)
        self._routes = self._build_routes()

    def _build_routes(self) -> dict[str, _Route]:
        routes: dict[str, _Route] = {}
        for m in self.methods:
            connect = functools.partial(self._connect, m)
            acumos = functools.partial(self._acumos, m)
            routes[f"/{self.service}/{m.rpc}"] = _Route(("POST",), connect, m, "connect")
            routes[f"/model/methods/{m.name}"] = _Route(("POST",), acumos, m, "acumos")
        routes["/model/methods"] = _Route(_GET, self._listing)
        if self._info is not None:
            routes["/model/info"] = _Route(_GET, self._info_page)
        routes["/healthz"] = _Route(_GET, self._healthz)
        routes["/readyz"] = _Route(_GET, self._readyz)
        if self._metrics is not None:
            routes["/metrics"] = _Route(_GET, self._metrics_page)
        routes["/openapi.json"] = _Route(_GET, self._docs.openapi)
        routes["/docs"] = _Route(_GET, self._docs.page)
        routes["/"] = _Route(_GET, self._root)
        return routes

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        request = request_of(scope, receive)
        route = self._routes.get(request.path)
        try:
            if route is None:
                raise self._not_found(request.path)
            if request.method not in route.methods:
                allowed = ", ".join(route.methods)
                raise HttpError(
                    405,
                    "unimplemented",
                    f"{request.method} {request.path} is not served; use {allowed}",
                    [("Allow", allowed)],
                )
            response = await route.handle(request)
        except HttpError as exc:
            response = error_response(exc)
        except ClientGone:
            return
        except Exception:  # a bug here must still answer, and be found in the log
            logger.exception("HTTP %s %s failed", request.method, request.path)
            response = error_response(
                HttpError(500, "internal", "internal error; see the server's log")
            )
        await send_response(send, response, head=request.method == "HEAD")
        seconds = time.perf_counter() - t0
        method = route.method if route is not None and request.method == "POST" else None
        if method is not None and self._observe is not None:
            assert route is not None
            code = "OK" if response.status == 200 else _grpc_name(response.code)
            self._observe(
                method.name, code, seconds, request.size, len(response.body), route.protocol
            )
        if self._access_log:
            access_logger.info(
                "%s %s %d %.2f ms",
                request.method,
                request.path,
                response.status,
                seconds * 1e3,
                extra={"path": request.path, "status": response.status},
            )

    def close(self) -> None:
        """Stop the handler threads (after the server stopped)."""
        self._runner.close()

    # ------------------------------------------------------------ calls

    async def _connect(self, m: Method, request: Request) -> Response:
        codec = http_connect.codec_of(request)
        http_connect.check_version(request)
        deadline = http_connect.deadline_of(request)
        reply = await self._call(m, request, codec, deadline)
        out = reply if codec == "proto" else self._to_json(m, reply)
        return Response(200, _JSON_MEDIA[codec], out)

    async def _acumos(self, m: Method, request: Request) -> Response:
        codec = http_acumos.content_codec_of(request)
        answer = http_acumos.accept_of(request, codec)
        reply = await self._call(m, request, codec, None)
        out = reply if answer == "proto" else self._to_json(m, reply)
        return Response(200, http_acumos.MEDIA[answer], out)

    async def _call(self, m: Method, request: Request, codec: str, deadline: float | None) -> bytes:
        body = await read_body(request, self.max_body_bytes)
        request.size = len(body)
        if codec == "proto":
            payload = body
        else:
            try:
                payload = self.codec.to_proto(m.request, body)
            except JsonError as exc:
                invalid = InvalidRequest(f"{m.name}: invalid request: {exc}")
                raise http_error(status_of(invalid)) from None
        return await self._runner.call(
            self._handlers[m.rpc], payload, deadline, m.name, is_async=self._async[m.rpc]
        )

    def _to_json(self, m: Method, reply: bytes) -> bytes:
        try:
            return self.codec.to_json(m.response, reply)
        except ValueError as exc:  # the handler's reply is not its message: a server fault
            logger.error("%s: the reply does not decode as %s: %s", m.name, m.response, exc)
            raise HttpError(
                500, "internal", f"{m.name}: internal error; see the server's log"
            ) from None

    # ------------------------------------------------------------ pages

    async def _listing(self, request: Request) -> Response:
        methods = [
            {
                "name": m.name,
                "rpc": m.rpc,
                "connect": f"/{self.service}/{m.rpc}",
                "acumos": f"/model/methods/{m.name}",
                "request": m.request,
                "response": m.response,
                "description": m.doc or "",
            }
            for m in self.methods
        ]
        body = orjson.dumps({"service": self.service, "methods": methods})
        return Response(200, "application/json", body)

    async def _info_page(self, request: Request) -> Response:
        assert self._info is not None
        return Response(200, "application/json", self._info)

    async def _healthz(self, request: Request) -> Response:
        return Response(200, _TEXT, b"SERVING\n")

    async def _readyz(self, request: Request) -> Response:
        try:
            ready = bool(self._ready())
        except Exception:
            logger.exception("the readiness check failed")
            ready = False
        if ready:
            return Response(200, _TEXT, b"SERVING\n")
        return Response(503, _TEXT, b"NOT_SERVING\n")

    async def _metrics_page(self, request: Request) -> Response:
        assert self._metrics is not None
        return Response(200, "text/plain; version=0.0.4; charset=utf-8", self._metrics())

    async def _root(self, request: Request) -> Response:
        return Response(307, _TEXT, b"see /docs\n", (("Location", "/docs"),))

    def _not_found(self, path: str) -> HttpError:
        names = [m.name for m in self.methods]
        rpcs = [m.rpc for m in self.methods]
        if path.startswith("/model/methods/"):
            name = path[len("/model/methods/") :]
            return HttpError(
                404,
                "not_found",
                f"no method {name!r}{did_you_mean(name, names)} "
                f"(the methods: {', '.join(names) or 'none'}; POST /model/methods/<method>)",
            )
        parts = path.strip("/").split("/")
        if len(parts) == 2 and "." in parts[0]:
            service, rpc = parts
            if service == self.service:
                return HttpError(
                    404,
                    "not_found",
                    f"{service} has no method {rpc!r}{did_you_mean(rpc, rpcs)} "
                    f"(its methods: {', '.join(rpcs) or 'none'})",
                )
            return HttpError(
                404,
                "not_found",
                f"no service {service!r} here{did_you_mean(service, [self.service])} "
                f"(this server serves {self.service}: POST /{self.service}/<Method>)",
            )
        pages = " ".join(p for p, r in self._routes.items() if r.method is None and p != "/")
        return HttpError(
            404,
            "not_found",
            f"nothing at {path!r}; this server answers POST /{self.service}/<Method> "
            f"(methods: {', '.join(rpcs) or 'none'}), POST /model/methods/<method>, "
            f"and GET {pages}",
        )


def _grpc_name(connect_code: str) -> str:
    return "CANCELLED" if connect_code == "canceled" else connect_code.upper()

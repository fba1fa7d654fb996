"""The few ASGI pieces the HTTP face is built from: a request, a response, an error answer.

A raw ASGI app rather than a framework: measured with h2load `--h1` on uvicorn +
httptools (bench/http_stack.py), a raw app answering the same JSON call spends about
two thirds of Starlette's server CPU per call (103 against 138 µs at 1 connection, 64
against 92 µs at 64 connections, on a loaded 2-core machine), and routing here is an
exact path lookup that needs nothing a framework adds.

Every error answer is the Connect protocol's JSON error body,
``{"code": "invalid_argument", "message": "..."}``, on the Connect face and the Acumos
face alike.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "ClientGone",
    "Headers",
    "HttpError",
    "Receive",
    "Request",
    "Response",
    "Scope",
    "Send",
    "error_response",
    "media_type",
    "read_body",
    "request_of",
    "send_response",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Headers = dict[str, str]


class HttpError(Exception):
    """An answer other than success.

    Attributes:
        status: the HTTP status.
        code: the Connect error code (``'invalid_argument'``), which metrics count as
            the gRPC code of the same name.
        message: one line for the caller.
        headers: extra response headers (``Allow``, ``Accept-Post``).
    """

    def __init__(
        self, status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = tuple(headers)
        super().__init__(message)


class ClientGone(Exception):
    """The client closed the connection before its request was read."""


@dataclass
class Request:
    """What the face reads of an HTTP request: the body is read on demand (`size`: its
    length once read)."""

    method: str
    path: str
    headers: Headers
    receive: Receive
    size: int = 0


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=())
    code: str = "ok"  # the Connect code of an error answer, for metrics


def request_of(scope: Scope, receive: Receive) -> Request:
    headers: Headers = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return Request(scope["method"], scope["path"], headers, receive)


def media_type(value: str | None) -> tuple[str, dict[str, str]]:
    """`application/json; charset=UTF-8` -> ('application/json', {'charset': 'utf-8'})."""
    if not value:
        return "", {}
    kind, _, rest = value.partition(";")
    params = {}
    for part in rest.split(";"):
        name, eq, val = part.partition("=")
        if eq:
            params[name.strip().lower()] = val.strip().strip('"').lower()
    return kind.strip().lower(), params


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, decompressed if `Content-Encoding` is gzip.

    Raises:
        HttpError: 413 over `limit` bytes (before or after decompression); 501 for an
            encoding other than gzip or identity (as Connect says); 400 for a corrupt
            gzip stream.
        ClientGone: the client disconnected.
    """
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise HttpError(
            501,
            "unimplemented",
            f"Content-Encoding {encoding!r} is not supported; use gzip or identity",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if encoding == "gzip" and body:  # Connect: never decompress an empty body
        return _gunzip(body, limit)
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    inflate = zlib.decompressobj(wbits=31)
    try:
        out = inflate.decompress(body, limit + 1)
    except zlib.error as exc:
        raise HttpError(400, "invalid_argument", f"the gzip body is corrupt: {exc}") from None
    if len(out) > limit:
        raise _too_large(len(out), limit, after="decompressed ")
    if not inflate.eof:
        raise HttpError(400, "invalid_argument", "the gzip body is truncated")
    return out


def _too_large(size: int, limit: int, after: str = "") -> HttpError:
    return HttpError(
        413,
        "resource_exhausted",
        f"the {after}request body is {size} bytes, over this server's limit of {limit} bytes",
    )


def error_response(exc: HttpError) -> Response:
    body = orjson.dumps({"code": exc.code, "message": exc.message})
    return Response(exc.status, "application/json", body, exc.headers, exc.code)


async def send_response(send: Send, response: Response, *, head: bool = False) -> None:
    headers = [
        (b"content-type", response.content_type.encode("latin-1")),
        (b"content-length", str(len(response.body)).encode("latin-1")),
    ]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})

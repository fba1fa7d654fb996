"""The Connect protocol's unary calls: `POST /<package>.<Service>/<Method>`.

What connectrpc.com/docs/protocol asks of a server, for unary calls:

* `Content-Type: application/json` (the canonical proto3 JSON mapping; a UTF-8
  `charset` is tolerated) or `application/proto`; the reply has the request's type.
  Anything else is 415 with `Accept-Post` naming the two; the streaming types
  (`application/connect+...`) get 415 too, as the methods here are unary.
* `Connect-Protocol-Version`, when sent, must be `1` (400 otherwise); it may be left
  out, so that plain curl works.
* `Connect-Timeout-Ms`: a positive integer of at most 10 digits, the call's deadline
  (400 when malformed). The handler gets it, and a reply that comes too late is 504
  `deadline_exceeded`.
* `Content-Encoding: gzip` or `identity` (others: 501 `unimplemented`); replies are
  not compressed (identity is acceptable to every client).
* Errors: a non-200 status from Connect's table, with the JSON error body.

GET requests (Connect's side-effect-free form) are refused with 405: model methods
are not marked free of side effects.
"""

from __future__ import annotations

import time

from modelwire.hosting.http_asgi import HttpError, Request, media_type

__all__ = ["CONNECT_TYPES", "check_version", "codec_of", "deadline_of"]

CONNECT_TYPES = {"application/json": "json", "application/proto": "proto"}
_ACCEPT_POST = ("Accept-Post", "application/json, application/proto")


def codec_of(request: Request) -> str:
    """'json' or 'proto', from the request's Content-Type.

    Raises:
        HttpError: 415 for any other type.
    """
    value = request.headers.get("content-type")
    kind, params = media_type(value)
    codec = CONNECT_TYPES.get(kind)
    if codec == "json" and params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise HttpError(
            415,
            "unimplemented",
            f"JSON requests are UTF-8; this one says charset={params['charset']}",
            [_ACCEPT_POST],
        )
    if codec is not None:
        return codec
    if kind.startswith("application/connect+"):
        reason = "Connect's streaming content types are not served: these methods are unary"
    elif kind.startswith("application/grpc"):
        reason = "this is the HTTP port; gRPC is served on the service's gRPC port"
    elif not kind:
        reason = "the request has no Content-Type"
    else:
        reason = f"Content-Type {value!r} is not served"
    raise HttpError(
        415,
        "unimplemented",
        f"{reason}; send application/json or application/proto",
        [_ACCEPT_POST],
    )


def check_version(request: Request) -> None:
    version = request.headers.get("connect-protocol-version")
    if version is not None and version.strip() != "1":
        raise HttpError(
            400, "invalid_argument", f"Connect-Protocol-Version must be 1, got {version!r}"
        )


def deadline_of(request: Request) -> float | None:
    """The call's deadline (a `time.monotonic()` instant) from Connect-Timeout-Ms.

    Raises:
        HttpError: 400 for a value that is not a positive integer of at most 10 digits.
    """
    value = request.headers.get("connect-timeout-ms")
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 10 and int(text) > 0):
        raise HttpError(
            400,
            "invalid_argument",
            f"Connect-Timeout-Ms must be a positive integer of at most 10 digits, got {value!r}",
        )
    return time.monotonic() + int(text) / 1000

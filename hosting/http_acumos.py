"""The Acumos model runner's REST contract: `POST /model/methods/<method>`.

Applications written against Acumos (acumos/python-model-runner, measured in
reference/acumos-measured.md §3) keep working unchanged:

* `Content-Type` and `Accept` are each `application/json` (the proto3 JSON mapping)
  or `application/vnd.google.protobuf`, and may be mixed (protobuf in, JSON out).
* A missing `Content-Type` is 400 and an unsupported one 415, as Acumos answers; an
  unsupported `Accept` is 415 too.
* Where the runner was stricter than HTTP, this face is tolerant: a `charset=utf-8`
  parameter, `Accept: */*` or `application/*` (the reply then takes the request's
  type), an `Accept` list with q-values, and a missing `Accept` (HTTP's "anything").
* An undecodable body is 400; a model's ValueError/TypeError is 400 as in Acumos, but
  any other failure of the model is 500 (Acumos answered 400 for every failure).
* `GET /model/methods` lists the methods (name, the two paths, the message types and
  the docstring).

Error bodies are the same JSON error body as the Connect face's.
"""

from __future__ import annotations

from modelwire.hosting.http_asgi import HttpError, Request, media_type

__all__ = ["ACUMOS_TYPES", "PROTOBUF", "accept_of", "content_codec_of"]

PROTOBUF = "application/vnd.google.protobuf"
ACUMOS_TYPES = {"application/json": "json", PROTOBUF: "proto"}
MEDIA = {"json": "application/json", "proto": PROTOBUF}
_BOTH = f"application/json or {PROTOBUF}"


def content_codec_of(request: Request) -> str:
    """'json' or 'proto', from the request's Content-Type.

    Raises:
        HttpError: 400 when it is missing, 415 when it is neither type.
    """
    value = request.headers.get("content-type")
    if not value or not value.strip():
        raise HttpError(400, "invalid_argument", f"the Content-Type header is required: {_BOTH}")
    kind, params = media_type(value)
    codec = ACUMOS_TYPES.get(kind)
    if codec == "json" and params.get("charset", "utf-8") not in ("utf-8", "utf8"):
        raise HttpError(
            415,
            "unimplemented",
            f"JSON requests are UTF-8; this one says charset={params['charset']}",
        )
    if codec is None:
        raise HttpError(415, "unimplemented", f"Content-Type {value!r} is not served; send {_BOTH}")
    return codec


def accept_of(request: Request, request_codec: str) -> str:
    """'json' or 'proto': the reply's type, the client's most preferred of the two.

    Raises:
        HttpError: 415 when `Accept` names neither (nor a wildcard).
    """
    value = request.headers.get("accept")
    if value is None or not value.strip():
        return request_codec
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(value.split(",")):
        kind, params = media_type(part)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        if q <= 0:
            continue
        codec = ACUMOS_TYPES.get(kind)
        if codec is None and kind in ("*/*", "application/*"):
            codec = request_codec
        if codec is not None and (best is None or q > best[0]):
            best = (q, position, codec)
    if best is None:
        raise HttpError(415, "unimplemented", f"Accept {value!r} names no type served; use {_BOTH}")
    return best[2]

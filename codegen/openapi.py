"""Schema IR -> the OpenAPI 3.1 document of a service's HTTP face.

A text renderer like the `.proto` one, from the same lowering (`schema.lower`), so the
two cannot drift. It describes what the face answers (modelwire.hosting.http_face):

* every unary method twice: Connect's `POST /<package>.<Service>/<Rpc>` and the Acumos
  runner's `POST /model/methods/<method>`, each with the JSON and the protobuf body;
* a JSON Schema per message, enum and wrapper, keyed by the canonical proto3 JSON names
  (lowerCamelCase; the proto field names are accepted too, and each property that has
  another proto name says so); 64-bit integers as decimal strings, as the mapping
  writes them; enums by value name; bytes as base64; `Tensor` as its canonical object
  or, in requests, nested arrays of numbers;
* the method and message docstrings as descriptions, and an example request per
  method (`modelwire.codegen.json_examples`), which the /docs page sends;
* the operational endpoints (health, readiness, metrics, this document, the page).

Pure: no protobuf, no I/O; `render()` gives deterministic JSON text.
"""

from __future__ import annotations

import json
from typing import Any

from modelwire.codegen.json_examples import example_request
from modelwire.codegen.json_facts import json_name
from modelwire.codegen.lowering import ProtoEnum, ProtoField, ProtoFile, ProtoMessage, lower
from modelwire.codegen.schema import TENSOR_MESSAGE, ModelSchema

__all__ = ["CONNECT_ERROR_CODES", "openapi", "render"]

CONNECT_ERROR_CODES = (
    "canceled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal",
    "unavailable",
    "data_loss",
    "unauthenticated",
)

_SCALARS: dict[str, dict[str, Any]] = {
    "double": {"type": "number", "format": "double"},
    "float": {"type": "number", "format": "float"},
    "int64": {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    "uint64": {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    "int32": {"type": "integer", "format": "int32"},
    "uint32": {"type": "integer", "format": "uint32", "minimum": 0},
    "bool": {"type": "boolean"},
    "string": {"type": "string"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
}
_KEY_PATTERNS = {"bool": "^(true|false)$", "string": None}
_NESTED_ARRAY = "TensorArray"
_ERROR = "ConnectError"
_PROTOBUF_BODY: dict[str, Any] = {"type": "string", "contentMediaType": "application/x-protobuf"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _element(f: ProtoField) -> dict[str, Any]:
    if f.is_message or f.is_enum:
        return _ref(f.type)
    return dict(_SCALARS[f.type])


def _field_schema(f: ProtoField) -> dict[str, Any]:
    if f.map_key is not None:
        out: dict[str, Any] = {"type": "object", "additionalProperties": _element(f)}
        pattern = _KEY_PATTERNS.get(f.map_key, "^-?[0-9]+$")
        if pattern:
            out["propertyNames"] = {"pattern": pattern}
        return out
    if f.label == "repeated":
        return {"type": "array", "items": _element(f)}
    return _element(f)


def _message_schema(m: ProtoMessage) -> dict[str, Any]:
    properties = {}
    for f in m.fields:
        prop = _field_schema(f)
        if json_name(f.name) != f.name:
            prop = {**prop, "description": f"also accepted as `{f.name}`"}
        properties[json_name(f.name)] = prop
    out: dict[str, Any] = {"type": "object", "title": m.name, "properties": properties}
    if m.comment:
        out["description"] = m.comment
    return out


def _enum_schema(e: ProtoEnum) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "title": e.name, "enum": [n for n, _ in e.values]}
    out["description"] = (
        e.comment + "\n\n" if e.comment else ""
    ) + "Requests may also give the number, or the name without its prefix."
    return out


def _tensor_schema(m: ProtoMessage) -> dict[str, Any]:
    canonical = _message_schema(m)
    canonical.pop("title", None)
    return {
        "title": TENSOR_MESSAGE,
        "description": (m.comment or "")
        + "\n\nReplies always use the object form (dtype, shape, base64 data). Requests may "
        "instead give nested arrays of numbers (or of true/false), cast to the declared dtype.",
        "oneOf": [canonical, _ref(_NESTED_ARRAY)],
    }


def _components(pf: ProtoFile) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for m in pf.messages:
        schemas[m.name] = _tensor_schema(m) if m.name == TENSOR_MESSAGE else _message_schema(m)
    for e in pf.enums:
        schemas[e.name] = _enum_schema(e)
    if any(m.name == TENSOR_MESSAGE for m in pf.messages):
        schemas[_NESTED_ARRAY] = {
            "description": "A tensor as nested JSON arrays: every row of a level the same length.",
            "oneOf": [
                {"type": "number"},
                {"type": "boolean"},
                {"type": "array", "items": _ref(_NESTED_ARRAY)},
            ],
        }
    schemas[_ERROR] = {
        "type": "object",
        "description": "The Connect protocol's error body, on every error answer.",
        "required": ["code"],
        "properties": {
            "code": {"type": "string", "enum": list(CONNECT_ERROR_CODES)},
            "message": {"type": "string"},
        },
    }
    return {"schemas": dict(sorted(schemas.items()))}


def _body(types: dict[str, str], message: str, example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for media, kind in types.items():
        if kind == "json":
            entry: dict[str, Any] = {"schema": _ref(message)}
            if example is not None:
                entry["example"] = example
            content[media] = entry
        else:
            content[media] = {"schema": dict(_PROTOBUF_BODY)}
    return content


def _errors() -> dict[str, Any]:
    return {
        "description": "An error: the status follows Connect's code table "
        "(400 invalid_argument, 404, 413, 415, 500 internal, 504 deadline_exceeded, ...).",
        "content": {"application/json": {"schema": _ref(_ERROR)}},
    }


_CONNECT_HEADERS = [
    {
        "name": "Connect-Protocol-Version",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "enum": ["1"]},
    },
    {
        "name": "Connect-Timeout-Ms",
        "in": "header",
        "required": False,
        "description": "The call's deadline in milliseconds.",
        "schema": {"type": "string", "pattern": "^[0-9]{1,10}$"},
    },
]


def _operations(schema: ModelSchema) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    service = f"{schema.package}.{schema.service}"
    connect = {"application/json": "json", "application/proto": "proto"}
    acumos = {"application/json": "json", "application/vnd.google.protobuf": "proto"}
    for m in schema.methods:
        if m.streaming:
            continue
        example = example_request(schema, m.request)
        for tag, path, types, op_id in (
            ("Connect", f"/{service}/{m.rpc}", connect, m.rpc),
            ("Acumos", f"/model/methods/{m.name}", acumos, f"{m.name}_acumos"),
        ):
            op: dict[str, Any] = {
                "tags": [tag],
                "operationId": op_id,
                "summary": f"{m.name}: {m.request} -> {m.response}",
                "requestBody": {"required": True, "content": _body(types, m.request, example)},
                "responses": {
                    "200": {"description": m.response, "content": _body(types, m.response)},
                    "default": _errors(),
                },
            }
            if m.doc:
                op["description"] = m.doc
            if tag == "Connect":
                op["parameters"] = _CONNECT_HEADERS
            paths[path] = {"post": op}
    return paths


def _plain(summary: str, media: str, description: str) -> dict[str, Any]:
    return {
        "get": {
            "tags": ["Service"],
            "summary": summary,
            "responses": {"200": {"description": description, "content": {media: {}}}},
        }
    }


def openapi(schema: ModelSchema, *, version: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `schema`'s HTTP face, as a JSON-ready dict.

    Args:
        schema: the service's schema.
        version: the model's version, for `info.version` (default: the package's).
    """
    pf = lower(schema)
    paths = _operations(schema)
    paths["/model/methods"] = _plain(
        "The methods (Acumos contract)", "application/json", "name, paths, types, docstring"
    )
    paths["/healthz"] = _plain("Liveness", "text/plain", "SERVING while the process serves")
    readyz = _plain("Readiness", "text/plain", "SERVING once the model is loaded")
    readyz["get"]["responses"]["503"] = {"description": "NOT_SERVING (loading or draining)"}
    paths["/readyz"] = readyz
    paths["/metrics"] = _plain(
        "Prometheus metrics", "text/plain", "Calls, latency and bytes, by method and protocol"
    )
    paths["/openapi.json"] = _plain("This document", "application/json", "OpenAPI 3.1")
    paths["/docs"] = _plain("An interactive page of the methods", "text/html", "HTML")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{schema.name} ({schema.package}.{schema.service})",
            "version": version or schema.package.rsplit(".", 1)[-1],
            "description": (
                f"The HTTP face of the modelwire service `{schema.package}.{schema.service}`, "
                "beside its gRPC one: Connect unary calls (connectrpc.com/docs/protocol) and "
                "the Acumos model runner's REST contract, with the proto3 canonical JSON "
                "mapping or protobuf bodies. Numbers may also be given as strings "
                '(64-bit integers, "NaN", "Infinity").'
            ),
        },
        "tags": [
            {"name": "Connect", "description": "POST /<package>.<Service>/<Method>"},
            {"name": "Acumos", "description": "POST /model/methods/<method>"},
            {"name": "Service", "description": "Health, metrics and documentation"},
        ],
        "paths": paths,
        "components": _components(pf),
    }


def render(schema: ModelSchema, *, version: str = "") -> str:
    """`openapi()` as deterministic JSON text."""
    return json.dumps(openapi(schema, version=version), indent=2, ensure_ascii=False) + "\n"

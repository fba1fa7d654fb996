"""`modelwire.runtime.v1.ModelInfoService`: a server's manifest, for clients that want
more than reflection gives (Tensor dtypes, Python types, the solution's models)."""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import descriptor_pb2

from modelwire.codegen.descriptors import build_file, message_classes
from modelwire.codegen.lowering import lower
from modelwire.codegen.schema import Field, Message, Method, ModelSchema, Scalar, ScalarType

__all__ = ["INFO_FILE", "INFO_SCHEMA", "INFO_SERVICE", "info_file", "info_handler"]

_STRING = ScalarType(Scalar.STRING)

INFO_SCHEMA = ModelSchema(
    name="info",
    package="modelwire.runtime.v1",
    service="ModelInfoService",
    methods=(
        Method(
            "get_model_info",
            "GetModelInfo",
            "GetModelInfoRequest",
            "GetModelInfoResponse",
            (),
            "message",
            "The manifest of the model this server runs.",
        ),
    ),
    messages=(
        Message("GetModelInfoRequest", ()),
        Message(
            "GetModelInfoResponse",
            (
                Field("name", 1, _STRING),
                Field("version", 2, _STRING),
                Field("manifest_json", 3, _STRING),
            ),
            doc="The model's name, version, and its modelwire.json manifest as JSON text.",
        ),
    ),
)
INFO_SERVICE = "modelwire.runtime.v1.ModelInfoService"
INFO_FILE = "modelwire/runtime/v1/info.proto"


def info_file() -> descriptor_pb2.FileDescriptorProto:
    return build_file(lower(INFO_SCHEMA), INFO_FILE)


def info_handler(
    name: str, version: str, manifest: dict[str, Any], *, aio: bool
) -> grpc.GenericRpcHandler:
    """ModelInfoService answering with a fixed manifest."""
    response_cls = message_classes(info_file()).get("GetModelInfoResponse")
    reply = response_cls(
        name=name, version=version, manifest_json=json.dumps(manifest, sort_keys=True)
    ).SerializeToString()
    if aio:

        async def get_async(request: bytes, context: Any) -> bytes:
            return reply

        handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
            get_async
        )
    else:
        handler = grpc.unary_unary_rpc_method_handler(lambda request, context: reply)
    return grpc.method_handlers_generic_handler(INFO_SERVICE, {"GetModelInfo": handler})

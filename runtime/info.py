"""`modelwire.runtime.v1.ModelInfoService`: a served model's manifest, for clients.

Reflection tells a client the proto; the manifest adds what only Python knows
(parameter names, whether a method returns a bare value, declared Tensor
dtypes), so `connect()` can hand back exactly what the model returns. The
service's proto is built from the same IR as models' protos
(`proto/modelwire/runtime/v1/info.proto` is its rendered form).
"""

from __future__ import annotations

from modelwire.codegen.schema import (
    Field,
    Message,
    Method,
    ModelSchema,
    Scalar,
    ScalarType,
)

__all__ = ["INFO_FILE", "INFO_SCHEMA", "INFO_SERVICE"]

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

"""JSON bodies <-> protobuf bytes for the messages of one model's schema.

The HTTP face's transcoder: a JSON request becomes the protobuf bytes that the gRPC
handler takes, and the handler's protobuf reply becomes JSON, so both faces share one
handler and one model. The mapping is proto3's canonical JSON (see
`modelwire.codegen.json_decoding` for what is read and `modelwire.codegen.json_encoding`
for what is written), with nested arrays accepted for tensors
(`modelwire.codegen.json_tensors`). Bodies are parsed and written with orjson.

Example:
    >>> codec = JsonCodec(schema)
    >>> request = codec.to_proto("ClassifyRequest", b'{"sepal_length": [5.1]}')
    >>> codec.to_json("ClassifyResponse", handler(request, None))
    b'{"irisType":["0"]}'
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.message import DecodeError as PbDecodeError

from modelwire.codegen.descriptors import MessageClasses, file_descriptor, message_classes
from modelwire.codegen.json_decoding import JsonDecoders
from modelwire.codegen.json_encoding import JsonEncoders
from modelwire.codegen.json_facts import tensor_dtypes
from modelwire.codegen.json_scalars import SKIP, JsonError, describe
from modelwire.codegen.json_tensors import tensor_converter
from modelwire.codegen.schema import ModelSchema

__all__ = ["JsonCodec", "JsonError"]


class JsonCodec:
    """Canonical proto3 JSON for the messages of `schema`.

    Args:
        schema: the model's schema.
        classes: its message classes, when the caller has them already.
    """

    def __init__(self, schema: ModelSchema, classes: MessageClasses | None = None) -> None:
        self.schema = schema
        self.classes = classes or message_classes(file_descriptor(schema))
        self._decoders = JsonDecoders(tensor_converter, tensor_dtypes(schema))
        self._encoders = JsonEncoders()

    def to_proto(self, message: str, body: bytes) -> bytes:
        """A JSON request body as the serialized `message`.

        Raises:
            JsonError: the body is not JSON (the message gives line, column and
                position), not an object, or does not fit the message (it names the
                field path).
        """
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if not body.strip():
                raise JsonError(
                    "", "the body is empty; a JSON request is an object, at least {}"
                ) from None
            raise JsonError(
                "",
                f"malformed JSON at line {exc.lineno}, column {exc.colno} "
                f"(position {exc.pos}): {exc.msg}",
            ) from None
        return self.value_to_proto(message, value)

    def value_to_proto(self, message: str, value: Any) -> bytes:
        """A parsed JSON value (an object) as the serialized `message`."""
        cls = self.classes.get(message)
        if not isinstance(value, dict):
            raise JsonError("", f"the request is a JSON object ({message}), not {describe(value)}")
        kwargs = self._decoders.message(cls.DESCRIPTOR)(value, "")
        try:
            return cls(**({} if kwargs is SKIP else kwargs)).SerializeToString()
        except (ValueError, TypeError) as exc:  # a check above missed it: still the caller's
            raise JsonError("", f"does not fit {message}: {exc}") from None

    def to_value(self, message: str, data: bytes) -> Any:
        """Serialized `message` bytes as a JSON-ready value (a dict).

        Raises:
            ValueError: `data` is not a valid `message` (a handler's reply should be).
        """
        cls = self.classes.get(message)
        try:
            msg = cls.FromString(data)
        except PbDecodeError as exc:
            raise ValueError(f"not a valid {message}: {exc}") from None
        return self._encoders.message(cls.DESCRIPTOR)(msg)

    def to_json(self, message: str, data: bytes) -> bytes:
        """Serialized `message` bytes as a JSON body."""
        return orjson.dumps(self.to_value(message, data), option=orjson.OPT_SERIALIZE_NUMPY)

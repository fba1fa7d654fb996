"""Python values <-> protobuf messages, driven by the schema.

`ValueCodec` compiles, once per schema, a converter per message: request bytes
become the arguments a model function takes (NamedTuples, dataclasses, ndarrays,
enums, numpy scalars), and what the function returns becomes response bytes. The
same codec runs on the client side (`connect()`), with namedtuples generated
from the schema where no Python classes are bound. The converters themselves are
built in `modelwire.codegen.decoding` and `modelwire.codegen.encoding`.

Encoding is lenient about how data scientists write values: numpy arrays and
numpy scalars are accepted wherever the annotation says int, float, bool or a
list of them. It stays strict about meaning: a float is never truncated into an
int field. Large Tensors bypass protobuf's copies (see `modelwire.codegen.wire`).

Errors: malformed input raises `DecodeError` (a ValueError); a value that does
not fit its field raises `EncodeError` (a TypeError). Both name the field path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.message import DecodeError as PbDecodeError

from modelwire.codegen.arguments import ArgumentBinder
from modelwire.codegen.converters import (
    DecodeError,
    Decoder,
    Deferred,
    EncodeError,
    Encoder,
    Path,
)
from modelwire.codegen.decoding import MessageDecoders
from modelwire.codegen.descriptors import MessageClass, MessageClasses
from modelwire.codegen.encoding import MessageEncoders
from modelwire.codegen.enum_values import EnumTable
from modelwire.codegen.python_types import Binding
from modelwire.codegen.schema import (
    MessageType,
    Method,
    ModelSchema,
    OptionalType,
    TensorType,
)
from modelwire.codegen.wire import (
    TensorPlan,
    WireError,
    append_tensor_data,
    split_tensors,
)

__all__ = ["DecodeError", "EncodeError", "MethodCodec", "ValueCodec"]


class MethodCodec:
    """Converters for one method; built by `ValueCodec.method()`.

    Server side: `decode_request(bytes) -> (args, kwargs)` and
    `encode_response(value) -> bytes`. Client side: `encode_request(args,
    kwargs) -> bytes` and `decode_response(bytes) -> value`.
    """

    def __init__(self, codec: ValueCodec, method: Method) -> None:
        self.method = method
        req = codec.schema.message(method.request)
        self.binder = ArgumentBinder(method, req)
        self._decode_req = codec.message_decoder(method.request)
        self._encode_req = codec.message_encoder(method.request)
        self._decode_resp = codec.message_decoder(method.response)
        self._encode_resp = codec.message_encoder(method.response)
        self._req_cls = codec.classes.get(method.request)
        self._resp_cls = codec.classes.get(method.response)
        self._req_plan = codec.tensor_plan(method.request)
        self._resp_plan = codec.tensor_plan(method.response)
        self._diagnose_resp = codec.diagnoser(method.response)
        self._diagnose_req = codec.diagnoser(method.request)
        self._req_bound = method.request in codec.binding.messages

    # -------------------------------------------------- shared

    def _parse(self, cls: MessageClass, plan: TensorPlan | None, data: bytes) -> Any:
        arrays = None
        try:
            if plan is not None:
                data, arrays = split_tensors(data, plan)
            msg = cls.FromString(data)
        except WireError as exc:
            if exc.path:  # well-formed bytes, but a Tensor that does not fit its field
                raise DecodeError(_field_names(cls.DESCRIPTOR, exc.path), str(exc)) from exc
            raise DecodeError(
                "", f"the bytes are not a valid {cls.DESCRIPTOR.name}: {exc}"
            ) from exc
        except PbDecodeError as exc:
            raise DecodeError(
                "", f"the bytes are not a valid {cls.DESCRIPTOR.name}: {exc}"
            ) from exc
        return msg, arrays

    def _serialize(
        self,
        encode: Encoder,
        diagnose: Callable[[Any], None],
        value: Any,
        plan: TensorPlan | None,
    ) -> bytes:
        deferred: Deferred | None = [] if plan is not None else None
        try:
            msg = encode(value, deferred, ())
        except EncodeError:
            raise
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            diagnose(value)  # raises EncodeError naming the field
            raise EncodeError("", str(exc)) from exc
        head: bytes = msg.SerializeToString()
        if not deferred:
            return head
        parts: list[bytes | memoryview] = [head]
        for path, data in deferred:
            parts.extend(append_tensor_data(path, data))
        return b"".join(parts)

    # -------------------------------------------------- server side

    def decode_request(self, data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Request bytes -> the arguments of the model function."""
        msg, arrays = self._parse(self._req_cls, self._req_plan, data)
        value = self._decode_req(msg, arrays, ())
        if self.method.params is None:
            return (value,), {}
        return (), value if isinstance(value, dict) else value._asdict()

    def encode_response(self, value: Any) -> bytes:
        """What the model function returned -> response bytes."""
        if self.method.returns == "value":
            value = {"value": value}
        elif self.method.returns == "none":
            value = {}
        return self._serialize(self._encode_resp, self._diagnose_resp, value, self._resp_plan)

    # -------------------------------------------------- client side

    def encode_request(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bytes:
        """Call arguments -> request bytes, bound as `modelwire.codegen.arguments` says."""
        value = self.binder.bind(args, kwargs)
        return self._serialize(self._encode_req, self._diagnose_req, value, self._req_plan)

    def decode_response(self, data: bytes) -> Any:
        """Response bytes -> the value the model function returned."""
        msg, arrays = self._parse(self._resp_cls, self._resp_plan, data)
        value = self._decode_resp(msg, arrays, ())
        if self.method.returns == "value":
            return value["value"] if isinstance(value, dict) else value.value
        if self.method.returns == "none":
            return None
        return value


def _field_names(descriptor: Any, path: Path) -> str:
    """Field numbers from a message down -> the dotted field names, e.g. ``scene.image``."""
    names = []
    for number in path:
        fd = descriptor.fields_by_number[number]
        names.append(fd.name)
        descriptor = fd.message_type
    return ".".join(names)


class ValueCodec:
    """Converters between Python values and the messages of one schema.

    Args:
        schema: the model's schema.
        classes: message classes built from the same schema.
        binding: the Python classes behind messages and enums; where a message
            has none, values decode to generated namedtuples (and enums to
            generated Enum classes).
    """

    def __init__(
        self, schema: ModelSchema, classes: MessageClasses, binding: Binding | None = None
    ) -> None:
        self.schema = schema
        self.classes = classes
        self.binding = binding or Binding()
        enums = EnumTable(schema, self.binding)
        self._decoding = MessageDecoders(schema, self.binding, enums)
        self._encoding = MessageEncoders(schema, classes, enums)
        self._methods: dict[str, MethodCodec] = {}

    def method(self, name: str) -> MethodCodec:
        codec = self._methods.get(name)
        if codec is None:
            codec = self._methods[name] = MethodCodec(self, self.schema.method(name))
        return codec

    def python_type(self, message: str) -> type:
        """The class values of `message` decode to (bound, or a generated namedtuple)."""
        return self._decoding.python_type(message)

    # ------------------------------------------------------------ tensor plans

    def tensor_plan(self, message: str) -> TensorPlan | None:
        """Where the message's singular-path Tensors are, or None if it has none."""
        declared: dict[Path, str | None] = {}

        def build(name: str, path: Path, seen: frozenset[str]) -> TensorPlan | None:
            children: dict[int, TensorPlan | None] = {}
            for f in self.schema.message(name).fields:
                t = f.type.item if isinstance(f.type, OptionalType) else f.type
                if isinstance(t, TensorType):
                    children[f.number] = None
                    declared[(*path, f.number)] = t.dtype
                elif isinstance(t, MessageType) and t.name not in seen:
                    sub = build(t.name, (*path, f.number), seen | {t.name})
                    if sub is not None:
                        children[f.number] = sub
            return TensorPlan(children, declared) if children else None

        return build(message, (), frozenset({message}))

    # ------------------------------------------------------------ converters

    def message_decoder(self, name: str) -> Decoder:
        return self._decoding.message_decoder(name)

    def message_encoder(self, name: str) -> Encoder:
        return self._encoding.message_encoder(name)

    def diagnoser(self, name: str) -> Callable[[Any], None]:
        """A strict walk that raises EncodeError at the first value that does not fit."""
        return self._encoding.diagnoser(name)

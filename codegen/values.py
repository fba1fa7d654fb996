"""Python values <-> protobuf messages, driven by the schema.

`ValueCodec` compiles, once per schema, a converter per message: request bytes
become the arguments a model function takes (NamedTuples, dataclasses, ndarrays,
enums, numpy scalars), and what the function returns becomes response bytes. The
same codec runs on the client side (`connect()`), with namedtuples generated
from the schema where no Python classes are bound.

Encoding is lenient about how data scientists write values: numpy arrays and
numpy scalars are accepted wherever the annotation says int, float, bool or a
list of them. It stays strict about meaning: a float is never truncated into an
int field. Large Tensors bypass protobuf's copies (see `modelwire.codegen.wire`).

Errors: malformed input raises `DecodeError` (a ValueError); a value that does
not fit its field raises `EncodeError` (a TypeError). Both name the field path.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError as PbDecodeError
from google.protobuf.message import Message as PbMessage

from modelwire.codegen.annotations import Binding
from modelwire.codegen.descriptors import MessageClasses
from modelwire.codegen.schema import (
    EnumType,
    ListType,
    MapType,
    MessageType,
    Method,
    ModelSchema,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
)
from modelwire.codegen.wire import (
    TensorPlan,
    WireError,
    append_tensor_data,
    array_from_wire,
    array_to_wire,
    split_tensors,
)

__all__ = ["DecodeError", "EncodeError", "MethodCodec", "ValueCodec"]

Path = tuple[int, ...]
Deferred = list[tuple[Path, memoryview]]
_Enc = Callable[[Any, "Deferred | None", Path], Any]
_Dec = Callable[[Any, "Mapping[Path, np.ndarray] | None", Path], Any]


class DecodeError(ValueError):
    """Received bytes or values do not match the schema (the sender's fault)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)


class EncodeError(TypeError):
    """A value does not fit the field it is meant for."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)


_INT_RANGES = {
    Scalar.INT64: (-(1 << 63), (1 << 63) - 1),
    Scalar.UINT64: (0, (1 << 64) - 1),
    Scalar.INT32: (-(1 << 31), (1 << 31) - 1),
    Scalar.UINT32: (0, (1 << 32) - 1),
}
_INT_SCALARS = set(_INT_RANGES)
_FLOAT_SCALARS = {Scalar.DOUBLE, Scalar.FLOAT}


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _describe(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of {v.dtype}"
    text = repr(v)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(v).__name__} {text}"


# ---------------------------------------------------------------- scalar encoders


def _scalar_checker(s: Scalar) -> Callable[[Any, str], Any]:
    """Strict conversion of one scalar to what protobuf accepts; raises EncodeError."""
    if s in _INT_SCALARS:
        low, high = _INT_RANGES[s]

        def to_int(v: Any, where: str) -> Any:
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
                raise EncodeError(where, f"expected an integer, got {_describe(v)}")
            n = int(v)
            if not low <= n <= high:
                raise EncodeError(where, f"{n} is out of range for {s.value}")
            return n

        return to_int
    if s in _FLOAT_SCALARS:

        def to_float(v: Any, where: str) -> Any:
            if isinstance(v, bool | np.bool_) or not isinstance(
                v, int | float | np.integer | np.floating
            ):
                raise EncodeError(where, f"expected a number, got {_describe(v)}")
            return float(v)

        return to_float
    if s is Scalar.BOOL:

        def to_bool(v: Any, where: str) -> Any:
            if not isinstance(v, bool | np.bool_):
                raise EncodeError(where, f"expected a bool, got {_describe(v)}")
            return bool(v)

        return to_bool
    if s is Scalar.STRING:

        def to_str(v: Any, where: str) -> Any:
            if not isinstance(v, str):
                raise EncodeError(where, f"expected a str, got {_describe(v)}")
            return str(v)

        return to_str

    def to_bytes(v: Any, where: str) -> Any:
        if not isinstance(v, bytes | bytearray | memoryview):
            raise EncodeError(where, f"expected bytes, got {_describe(v)}")
        return bytes(v)

    return to_bytes


_ARRAY_KINDS = {
    **dict.fromkeys(_INT_SCALARS, "iu"),
    **dict.fromkeys(_FLOAT_SCALARS, "iuf"),
    Scalar.BOOL: "b",
    Scalar.STRING: "U",
    Scalar.BYTES: "S",
}


class MethodCodec:
    """Converters for one method; built by `ValueCodec.method()`.

    Server side: `decode_request(bytes) -> (args, kwargs)` and
    `encode_response(value) -> bytes`. Client side: `encode_request(args,
    kwargs) -> bytes` and `decode_response(bytes) -> value`.
    """

    def __init__(self, codec: ValueCodec, method: Method) -> None:
        self.method = method
        req = codec.schema.message(method.request)
        self._req_fields = [f.name for f in req.fields]
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
        # f(p: Point, k: int) or f(d: dict[str, int]): a lone dict/namedtuple argument is
        # the first field's value, not the whole request
        first = req.fields[0].type if req.fields else None
        if isinstance(first, OptionalType):
            first = first.item
        self._first_takes_message = method.params is not None and isinstance(
            first, MessageType | MapType
        )

    # -------------------------------------------------- shared

    def _parse(self, cls: type[PbMessage], plan: TensorPlan | None, data: bytes) -> Any:
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
        encode: _Enc,
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
        """Call arguments -> request bytes. One message-like argument, or fields."""
        if (
            len(args) == 1
            and not kwargs
            and not self._first_takes_message
            and _is_message_like(args[0])
        ):
            value: Any = args[0]
        else:
            if len(args) > len(self._req_fields):
                raise TypeError(
                    f"{self.method.name}() takes {len(self._req_fields)} arguments "
                    f"({', '.join(self._req_fields)}), {len(args)} given"
                )
            value = dict(zip(self._req_fields, args, strict=False))
            for k, v in kwargs.items():
                if k not in self._req_fields:
                    raise TypeError(
                        f"{self.method.name}() got an unexpected argument {k!r}; "
                        f"fields are {', '.join(self._req_fields) or '(none)'}"
                    )
                if k in value:
                    raise TypeError(f"{self.method.name}() got multiple values for {k!r}")
                value[k] = v
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


def _is_message_like(v: Any) -> bool:
    return (
        isinstance(v, Mapping)
        or (isinstance(v, tuple) and hasattr(v, "_fields"))
        or (dataclasses.is_dataclass(v) and not isinstance(v, type))
    )


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
        self._encoders: dict[str, _Enc] = {}
        self._decoders: dict[str, _Dec] = {}
        self._factories: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self._enum_by_number: dict[str, dict[int, Any]] = {}
        self._number_by_enum: dict[str, Callable[[Any, str], int]] = {}
        self._methods: dict[str, MethodCodec] = {}
        self._generated: dict[str, type] = {}

    def method(self, name: str) -> MethodCodec:
        codec = self._methods.get(name)
        if codec is None:
            codec = self._methods[name] = MethodCodec(self, self.schema.method(name))
        return codec

    def python_type(self, message: str) -> type:
        """The class values of `message` decode to (bound, or a generated namedtuple)."""
        bound = self.binding.messages.get(message)
        if bound is not None:
            return bound
        existing = self._generated.get(message)
        if existing is not None:
            return existing
        names = [f.name for f in self.schema.message(message).fields]
        # rename=True replaces only names a namedtuple cannot have (keywords, leading _)
        gen: type = collections.namedtuple(message, names, rename=True)  # type: ignore[misc]
        self._generated[message] = gen
        return gen

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

    # ------------------------------------------------------------ decoding

    def message_decoder(self, name: str) -> _Dec:
        dec = self._decoders.get(name)
        if dec is not None:
            return dec

        def lazy(m: Any, arrays: Mapping[Path, np.ndarray] | None, path: Path) -> Any:
            return real(m, arrays, path)

        self._decoders[name] = lazy  # recursive messages refer to themselves
        real = self._build_message_decoder(name)
        self._decoders[name] = real
        return real

    def _factory(self, name: str) -> Callable[[dict[str, Any]], Any]:
        f = self._factories.get(name)
        if f is None:
            bound = self.binding.messages.get(name)
            if (
                bound is None
                and name.endswith(("Request", "Response"))
                and any(name in (m.request, m.response) for m in self.schema.methods)
                and self._is_param_message(name)
            ):
                f = dict  # parameters / wrapped values: keyword dict
            else:
                cls = bound or self.python_type(name)
                f = _make_factory(cls)
            self._factories[name] = f
        return f

    def _is_param_message(self, name: str) -> bool:
        for m in self.schema.methods:
            if m.request == name and m.params is not None:
                return True
            if m.response == name and m.returns in ("value", "none"):
                return True
        return False

    def _build_message_decoder(self, name: str) -> _Dec:
        msg = self.schema.message(name)
        factory = self._factory(name)
        steps: list[tuple[str, int, Any, str]] = []
        for f in msg.fields:
            t = f.type
            if isinstance(t, OptionalType):
                steps.append((f.name, f.number, self._decoder(t.item, f.name), "optional"))
            elif isinstance(t, TensorType):
                steps.append((f.name, f.number, self._decoder(t, f.name), "tensor"))
            elif isinstance(t, MessageType):
                steps.append((f.name, f.number, self._decoder(t, f.name), "required"))
            else:
                steps.append((f.name, f.number, self._decoder(t, f.name), "plain"))

        def decode(m: Any, arrays: Mapping[Path, np.ndarray] | None, path: Path) -> Any:
            out: dict[str, Any] = {}
            for fname, number, conv, kind in steps:
                if kind == "plain":
                    out[fname] = conv(getattr(m, fname), arrays, (*path, number))
                    continue
                fpath = (*path, number)
                if arrays is not None and fpath in arrays:
                    out[fname] = arrays[fpath]
                elif m.HasField(fname):
                    out[fname] = conv(getattr(m, fname), arrays, fpath)
                elif kind == "optional":
                    out[fname] = None
                else:
                    raise DecodeError(fname, "required field is not set")
            return factory(out)

        return decode

    def _decoder(self, t: TypeNode, where: str) -> _Dec:
        match t:
            case ScalarType(_, None):
                return lambda v, a, p: v
            case ScalarType(_, numpy_name):
                np_type = np.dtype(numpy_name).type

                def to_numpy(v: Any, a: Any, p: Path) -> Any:
                    try:
                        return np_type(v)
                    except OverflowError as exc:
                        raise DecodeError(where, f"{v} is out of range for {numpy_name}") from exc

                return to_numpy
            case EnumType(name):
                members = self._enum_members(name)

                def to_enum(v: Any, a: Any, p: Path) -> Any:
                    try:
                        return members[v]
                    except KeyError:
                        raise DecodeError(
                            where,
                            "enum value is not set"
                            if v == 0
                            else f"{v} is not a value of enum {name}",
                        ) from None

                return to_enum
            case MessageType(name):
                sub = self.message_decoder(name)

                def to_message(v: Any, a: Any, p: Path) -> Any:
                    try:
                        return sub(v, a, p)
                    except DecodeError as exc:
                        raise DecodeError(_join(where, exc.where), exc.reason) from None

                return to_message
            case TensorType(dtype):

                def to_array(v: Any, a: Any, p: Path) -> Any:
                    try:
                        return array_from_wire(v.dtype, v.shape, v.data, declared=dtype)
                    except WireError as exc:
                        raise DecodeError(where, str(exc)) from None

                return to_array
            case ListType(item):
                if isinstance(item, ScalarType) and item.numpy is None:
                    return lambda v, a, p: list(v)
                if isinstance(item, ListType | MapType):
                    inner = self._decoder(item, where)
                    return lambda v, a, p: [inner(w.values, None, ()) for w in v]
                conv = self._decoder(item, where)
                return lambda v, a, p: [conv(x, None, ()) for x in v]
            case MapType(key, value):
                if key.numpy is not None:  # dict[np.int32, V]: keys decode to np.int32 too
                    kconv = self._decoder(key, f"{where} key")
                    inner = self._decoder(MapType(ScalarType(key.scalar), value), where)
                    return lambda v, a, p: {
                        kconv(k, None, ()): x for k, x in inner(v, None, ()).items()
                    }
                if isinstance(value, ScalarType) and value.numpy is None:
                    return lambda v, a, p: dict(v)
                if isinstance(value, ListType | MapType):
                    vconv = self._decoder(value, where)
                    return lambda v, a, p: {k: vconv(w.values, None, ()) for k, w in v.items()}
                vconv = self._decoder(value, where)
                return lambda v, a, p: {k: vconv(x, None, ()) for k, x in v.items()}
        raise TypeError(f"no decoder for {t!r}")

    # ------------------------------------------------------------ enums

    def _enum_members(self, name: str) -> dict[int, Any]:
        members = self._enum_by_number.get(name)
        if members is None:
            schema = self.schema.enum(name)
            values = list(schema.values)
            bound = self.binding.enums.get(name)
            if bound is None:
                if all(num != 0 and n != "UNSPECIFIED" for n, num in values):
                    # proto3 sends an unset enum as 0; with no model class to refuse it (a
                    # client of any gRPC server), it decodes to a member of its own
                    values.insert(0, ("UNSPECIFIED", 0))
                bound = _make_enum(name, values)
                self.binding.enums[name] = bound
            cls = bound
            members = {num: cls[n] for n, num in values}
            self._enum_by_number[name] = members
        return members

    def _enum_number(self, name: str) -> Callable[[Any, str], int]:
        f = self._number_by_enum.get(name)
        if f is None:
            members = self._enum_members(name)
            by_member = {m: n for n, m in members.items()}
            by_name = {m.name: n for n, m in members.items()}
            by_name.update({m.name.upper(): n for n, m in members.items()})
            numbers = set(members)

            def number(v: Any, where: str) -> int:
                if isinstance(v, enum.Enum):
                    try:
                        return by_member[v]
                    except KeyError:
                        got = by_name.get(v.name)
                        if got is None:
                            raise EncodeError(where, f"{v!r} is not a member of {name}") from None
                        return got
                if isinstance(v, str):
                    got = by_name.get(v)
                    if got is None:
                        raise EncodeError(where, f"{v!r} is not a member of {name}")
                    return got
                if isinstance(v, int | np.integer) and int(v) in numbers:
                    return int(v)
                raise EncodeError(where, f"expected a member of {name}, got {_describe(v)}")

            f = self._number_by_enum[name] = number
        return f

    # ------------------------------------------------------------ encoding

    def message_encoder(self, name: str) -> _Enc:
        enc = self._encoders.get(name)
        if enc is not None:
            return enc

        def lazy(v: Any, d: Deferred | None, p: Path) -> Any:
            return real(v, d, p)

        self._encoders[name] = lazy
        real = self._build_message_encoder(name)
        self._encoders[name] = real
        return real

    def _build_message_encoder(self, name: str) -> _Enc:
        msg = self.schema.message(name)
        cls = self.classes.get(name)
        steps: list[tuple[str, int, _Enc, bool]] = []
        for f in msg.fields:
            t = f.type
            nullable = isinstance(t, OptionalType)
            if isinstance(t, OptionalType):
                t = t.item
            steps.append((f.name, f.number, self._encoder(t, f.name), nullable))
        names = {f.name for f in msg.fields}

        def encode(v: Any, deferred: Deferred | None, path: Path) -> Any:
            if isinstance(v, Mapping):
                extra = set(v) - names
                if extra:
                    raise EncodeError("", f"{name} has no field {sorted(extra)[0]!r}")
                get: Callable[[str], Any] = v.get
            else:
                get = _attr_getter(v, name)
            kw = {}
            for fname, number, conv, nullable in steps:
                x = get(fname)
                if x is None:
                    if nullable or isinstance(v, Mapping):
                        continue
                    raise EncodeError(fname, "is None but the field is not Optional")
                kw[fname] = conv(x, deferred, (*path, number))
            return cls(**kw)

        return encode

    def _encoder(self, t: TypeNode, where: str) -> _Enc:
        """A lenient encoder: numpy becomes Python; protobuf validates the rest."""
        match t:
            case ScalarType(scalar, _):
                check = _scalar_checker(scalar)

                def scalar_value(v: Any, d: Any, p: Path) -> Any:
                    if isinstance(v, np.generic | np.ndarray):
                        return check(v.item() if v.ndim == 0 else v, where)
                    return v

                return scalar_value
            case EnumType(name):
                number = self._enum_number(name)
                return lambda v, d, p: number(v, where)
            case MessageType(name):
                sub = self.message_encoder(name)

                def message_value(v: Any, d: Any, p: Path) -> Any:
                    try:
                        return sub(v, d, p)
                    except EncodeError as exc:
                        raise EncodeError(_join(where, exc.where), exc.reason) from None

                return message_value
            case TensorType(dtype):
                tensor_cls = self.classes.get("Tensor")

                def tensor_value(v: Any, deferred: Deferred | None, p: Path) -> Any:
                    try:
                        number, shape, data = array_to_wire(v, dtype)
                    except (TypeError, ValueError) as exc:
                        raise EncodeError(where, str(exc)) from None
                    if deferred is not None and p:
                        if len(data):
                            deferred.append((p, data))
                        return tensor_cls(dtype=number, shape=shape)
                    return tensor_cls(dtype=number, shape=shape, data=data.tobytes())

                return tensor_value
            case ListType(item):
                if isinstance(item, ScalarType):
                    kinds = _ARRAY_KINDS[item.scalar]
                    check = _scalar_checker(item.scalar)

                    def scalar_list(v: Any, d: Any, p: Path) -> Any:
                        if isinstance(v, np.ndarray):
                            if v.dtype.kind not in kinds or v.ndim != 1:
                                raise EncodeError(
                                    where,
                                    f"expected a 1-d array of {item.scalar.value}, "
                                    f"got {v.ndim}-d {v.dtype}",
                                )
                            return v.tolist()
                        if isinstance(v, str | bytes | Mapping):
                            raise EncodeError(where, f"expected a list, got {_describe(v)}")
                        if not isinstance(v, list | tuple):
                            v = list(v)
                        if v and isinstance(v[0], np.generic):
                            return [
                                check(x.item(), where) if isinstance(x, np.generic) else x
                                for x in v
                            ]
                        return v

                    return scalar_list
                conv = self._element_encoder(item, where)

                def list_value(v: Any, d: Any, p: Path) -> Any:
                    if isinstance(v, np.ndarray) and not isinstance(item, TensorType):
                        v = v.tolist()
                    if isinstance(v, str | bytes | Mapping):
                        raise EncodeError(where, f"expected a list, got {_describe(v)}")
                    return [conv(x, None, ()) for x in v]

                return list_value
            case MapType(key, value):
                kconv = self._encoder(key, where)
                vconv = self._element_encoder(value, where)

                def map_value(v: Any, d: Any, p: Path) -> Any:
                    if not isinstance(v, Mapping):
                        raise EncodeError(where, f"expected a dict, got {_describe(v)}")
                    return {kconv(k, None, ()): vconv(x, None, ()) for k, x in v.items()}

                return map_value
        raise TypeError(f"no encoder for {t!r}")

    def _element_encoder(self, t: TypeNode, where: str) -> _Enc:
        """Encoder for a list item or map value: nested containers go in wrappers."""
        if isinstance(t, ListType | MapType):
            from modelwire.codegen.schema import wrapper_name

            wcls = self.classes.get(wrapper_name(t))
            inner = self._encoder(t, where)
            return lambda v, d, p: wcls(values=inner(v, None, ()))
        return self._encoder(t, where)

    # ------------------------------------------------------------ diagnosis

    def diagnoser(self, name: str) -> Callable[[Any], None]:
        """A strict walk that raises EncodeError at the first value that does not fit."""

        def check(t: TypeNode, v: Any, where: str) -> None:
            if isinstance(t, OptionalType):
                if v is not None:
                    check(t.item, v, where)
                return
            match t:
                case ScalarType(scalar, _):
                    if isinstance(v, np.ndarray) and v.ndim == 0:
                        v = v.item()
                    _scalar_checker(scalar)(v, where)
                case ListType(item):
                    if isinstance(v, np.ndarray) and not isinstance(item, TensorType):
                        v = v.tolist()
                    if isinstance(v, str | bytes | Mapping) or not hasattr(v, "__iter__"):
                        raise EncodeError(where, f"expected a list, got {_describe(v)}")
                    for i, x in enumerate(v):
                        check(item, x, f"{where}[{i}]")
                case MapType(key, value):
                    if not isinstance(v, Mapping):
                        raise EncodeError(where, f"expected a dict, got {_describe(v)}")
                    for k, x in v.items():
                        check(key, k, f"{where} key")
                        check(value, x, f"{where}[{k!r}]")
                case MessageType(mname):
                    walk(mname, v, where)
                case EnumType(ename):
                    self._enum_number(ename)(v, where)
                case TensorType(dtype):
                    try:
                        array_to_wire(v, dtype)
                    except (TypeError, ValueError) as exc:
                        raise EncodeError(where, str(exc)) from None

        def walk(mname: str, v: Any, where: str) -> None:
            for f in self.schema.message(mname).fields:
                x = v.get(f.name) if isinstance(v, Mapping) else _attr_getter(v, mname)(f.name)
                if x is None:
                    continue
                check(f.type, x, _join(where, f.name))

        return lambda v: walk(name, v, "")


def _attr_getter(v: Any, message: str) -> Callable[[str], Any]:
    def get(field: str) -> Any:
        try:
            return getattr(v, field)
        except AttributeError:
            raise EncodeError(
                field, f"{_describe(v)} has no attribute {field!r} (expected a {message})"
            ) from None

    return get


def _make_enum(name: str, values: list[tuple[str, int]]) -> type[enum.Enum]:
    return enum.Enum(name, values)  # type: ignore[return-value]  # functional API


def _make_factory(cls: type) -> Callable[[dict[str, Any]], Any]:
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        # fields decode in declaration order; positional also suits renamed fields
        return lambda kw: cls(*kw.values())
    return lambda kw: cls(**kw)

"""Python values between fused steps: a step's arguments made from the values before it.

Where a fused step reads only replies of other fused steps, the router never encodes
or decodes between them: `value_request()` compiles, once per step, a function from
the producers' return values to the consumer's call arguments. A value passes as it
is where the producer's and the consumer's Python types are the same (the same class,
the same annotation); where they are only assignable (what `check` allows: the same
field names, extra producer fields dropped, a missing consumer field `optional`), it
is converted by field name into the consumer's own classes, as decoding the bytes
would have made them. A type pair with no value conversion here (two different enum
classes, two numpy scalar types) raises `NoValuePath`, and the step is fed bytes
instead, decoded as a model service decodes them.

Pure: no I/O, no gRPC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelwire.broker.plan import Source, StepPlan
from modelwire.codegen.compat import Typed
from modelwire.codegen.schema import (
    EnumType,
    ListType,
    MapType,
    MessageType,
    Method,
    OptionalType,
    ScalarType,
    TensorType,
    TypeNode,
)
from modelwire.codegen.values import ValueCodec

__all__ = ["NoValuePath", "ValueRequest", "reply_view", "value_request"]

Convert = Callable[[Any], Any]
# (args, kwargs) of the consumer's function, from the fused producers' return values
ValueRequest = Callable[[Mapping[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


class NoValuePath(Exception):
    """Values of these two types cannot be passed without the wire format in between."""


def reply_view(method: Method, value: Any) -> Any:
    """A method's return value as its response message: the object itself, or the
    message holding it as field `value`."""
    if method.returns == "value":
        return {"value": value}
    if method.returns == "none":
        return {}
    return value


def field_of(obj: Any, name: str) -> Any:
    """Field `name` of a message value (an object, or a dict of fields); None if absent."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _strip(t: TypeNode) -> TypeNode:
    return t.item if isinstance(t, OptionalType) else t


def converter(p: Typed, pc: ValueCodec, c: Typed, cc: ValueCodec) -> Convert | None:
    """How a value of `p` (decoded by `pc`) becomes one of `c` (as `cc` decodes it);
    None where it passes as it is.

    Raises:
        NoValuePath: no conversion of values between these types.
    """
    pt, ct = _strip(p.type), _strip(c.type)
    optional = isinstance(c.type, OptionalType) or isinstance(p.type, OptionalType)
    inner = _inner(p, pt, pc, c, ct, cc)
    if inner is None or not optional:
        return inner
    return lambda v: None if v is None else inner(v)


def _inner(
    p: Typed, pt: TypeNode, pc: ValueCodec, c: Typed, ct: TypeNode, cc: ValueCodec
) -> Convert | None:
    if isinstance(pt, TensorType) and isinstance(ct, TensorType):
        return None  # the same dtype (`check`): the array itself
    if isinstance(pt, ScalarType) and isinstance(ct, ScalarType):
        if pt.numpy == ct.numpy:
            return None  # int32 -> int64 and float -> double are Python's int and float
        raise NoValuePath(f"{pt.numpy or pt.scalar.value} -> {ct.numpy or ct.scalar.value}")
    if isinstance(pt, EnumType) and isinstance(ct, EnumType):
        pe, ce = pc.binding.enums.get(pt.name), cc.binding.enums.get(ct.name)
        if pe is not None and pe is ce:
            return None
        raise NoValuePath(f"enum {pt.name} -> enum {ct.name}")
    if isinstance(pt, ListType) and isinstance(ct, ListType):
        item = converter(Typed(p.schema, pt.item), pc, Typed(c.schema, ct.item), cc)
        if item is None:
            return None
        return lambda v: [item(x) for x in v]
    if isinstance(pt, MapType) and isinstance(ct, MapType):
        value = converter(Typed(p.schema, pt.value), pc, Typed(c.schema, ct.value), cc)
        if value is None:
            return None
        return lambda v: {k: value(x) for k, x in v.items()}
    if isinstance(pt, MessageType) and isinstance(ct, MessageType):
        return _message(p, pt, pc, c, ct, cc)
    raise NoValuePath(f"{pt!r} -> {ct!r}")


def _message(
    p: Typed, pt: MessageType, pc: ValueCodec, c: Typed, ct: MessageType, cc: ValueCodec
) -> Convert | None:
    pcls, ccls = pc.python_type(pt.name), cc.python_type(ct.name)
    if pcls is ccls:
        return None
    produced = {f.name: f for f in p.schema.message(pt.name).fields}
    fields: list[tuple[str, Convert | None]] = []
    for f in c.schema.message(ct.name).fields:
        pf = produced.get(f.name)
        if pf is None:
            fields.append((f.name, _none))  # `optional` in the consumer (`check`)
        else:
            fields.append(
                (f.name, converter(Typed(p.schema, pf.type), pc, Typed(c.schema, f.type), cc))
            )

    def convert(v: Any) -> Any:
        return ccls(
            **{name: field_of(v, name) if f is None else f(field_of(v, name)) for name, f in fields}
        )

    return convert


def _none(v: Any) -> None:
    return None


def _navigate(value: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        value = field_of(value, name)
    return value


def value_request(
    step: StepPlan,
    producers: Mapping[str, tuple[Method, ValueCodec]],
    consumer: ValueCodec,
) -> ValueRequest:
    """The call arguments of fused `step`, from the return values of the fused steps it
    reads (`producers`: step -> its method and its model's codec).

    Raises:
        NoValuePath: a source is not a fused step's reply, or cannot pass as a value.
    """
    method = step.method
    request = step.request
    assert isinstance(request.type, MessageType)
    request_cls = consumer.python_type(request.type.name)

    def source(src: Source, target: Typed) -> Callable[[Mapping[str, Any]], Any]:
        if src.step is None or src.step not in producers:
            raise NoValuePath(f"{src.text} is not the reply of a fused step")
        key, names = src.step, src.path
        produced, codec = producers[key]
        conv = converter(src.type, codec, target, consumer)
        if conv is None:
            return lambda values: _navigate(reply_view(produced, values[key]), names)
        return lambda values: conv(_navigate(reply_view(produced, values[key]), names))

    if step.whole is not None:
        whole = source(step.whole, request)
        if method.params is None:
            return lambda values: ((whole(values),), {})
        params = method.params
        return lambda values: ((), _fields_of(whole(values), params))
    parts = {fi.field: source(fi.source, _field_typed(request, fi.field)) for fi in step.fields}
    names = [f.name for f in request.schema.message(request.type.name).fields]

    def kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
        # fields no `with:` entry fills are `optional` (`check`)
        return {n: (parts[n](values) if n in parts else None) for n in names}

    if method.params is None:
        return lambda values: ((request_cls(**kwargs(values)),), {})
    return lambda values: ((), kwargs(values))


def _fields_of(message: Any, params: tuple[str, ...]) -> dict[str, Any]:
    return {name: field_of(message, name) for name in params}


def _field_typed(message: Typed, name: str) -> Typed:
    assert isinstance(message.type, MessageType)
    f = next(f for f in message.schema.message(message.type.name).fields if f.name == name)
    return Typed(message.schema, f.type)

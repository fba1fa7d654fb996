"""Type compatibility between schemas: the assignability rule, wire identity, breaking changes.

The broker checks every blueprint edge with it; the catalog checks a new model
version against the previous one, and answers "which models accept my output?"
with it.

Message P is assignable to message C when every field of C exists in P by name
with an assignable type and the same cardinality (singular, repeated, map);
scalars match exactly, except the lossless widenings int32 -> int64,
uint32 -> uint64, uint32 -> int64 and float -> double; P's extra fields are
dropped; a field of C that P lacks is allowed only if C marks it `optional`.
Enums are assignable when C has every value of P (by name); Tensors when their
dtypes agree where both declare one.

`wire_identical()` is the stricter question the router asks: can the consumer
parse the producer's bytes as they are?

Pure functions over the schema IR; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelwire.codegen.naming import wrapper_name
from modelwire.codegen.schema import (
    EnumType,
    ListType,
    MapType,
    MessageType,
    ModelSchema,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
)

__all__ = [
    "Mismatch",
    "Typed",
    "assignable",
    "breaking_changes",
    "field_type",
    "render_type",
    "wire_identical",
]

WIDENING: frozenset[tuple[Scalar, Scalar]] = frozenset(
    {
        (Scalar.INT32, Scalar.INT64),
        (Scalar.UINT32, Scalar.UINT64),
        (Scalar.UINT32, Scalar.INT64),
        (Scalar.FLOAT, Scalar.DOUBLE),
    }
)
# varint-encoded scalars whose values survive being read as the wider type
_VARINT_COMPATIBLE = WIDENING - {(Scalar.FLOAT, Scalar.DOUBLE)}


@dataclass(frozen=True, slots=True)
class Typed:
    """A type node together with the schema its message and enum names belong to."""

    schema: ModelSchema
    type: TypeNode


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Why a producer type does not fit a consumer type, at a field path."""

    code: str  # MW201 incompatible, MW202 missing field, MW203 cardinality, MW204 dtype
    path: str  # e.g. "boxes[].x" ('' for the whole value)
    producer: str  # rendered producer type ('' when the field is missing)
    consumer: str
    detail: str = ""


def _strip(t: TypeNode) -> TypeNode:
    return t.item if isinstance(t, OptionalType) else t


def _cardinality(t: TypeNode) -> str:
    t = _strip(t)
    if isinstance(t, ListType):
        return "repeated"
    if isinstance(t, MapType):
        return "map"
    return "singular"


def render_type(t: TypeNode, *, top: bool = True) -> str:
    """Proto-flavoured text: `repeated double`, `map<string, int64>`, `Tensor<uint8>`."""
    match t:
        case OptionalType(item):
            return f"optional {render_type(item, top=False)}"
        case ScalarType(scalar, _):
            return scalar.value
        case EnumType(name):
            return f"enum {name}"
        case MessageType(name):
            return f"message {name}" if top else name
        case TensorType(dtype):
            return f"Tensor<{dtype}>" if dtype else "Tensor"
        case ListType(item):
            inner = (
                wrapper_name(item)
                if isinstance(item, ListType | MapType)
                else render_type(item, top=False)
            )
            return f"repeated {inner}"
        case MapType(key, value):
            v = (
                wrapper_name(value)
                if isinstance(value, ListType | MapType)
                else render_type(value, top=False)
            )
            return f"map<{key.scalar.value}, {v}>"
    raise TypeError(f"not a type node: {t!r}")


def field_type(schema: ModelSchema, t: TypeNode, name: str) -> TypeNode | None:
    """The type of field `name` of message type `t`, or None if it has none."""
    t = _strip(t)
    if not isinstance(t, MessageType):
        return None
    try:
        msg = schema.message(t.name)
    except KeyError:
        return None
    for f in msg.fields:
        if f.name == name:
            return f.type
    return None


def assignable(p: Typed, c: Typed, path: str = "") -> list[Mismatch]:
    """Every reason `p` cannot be passed where `c` is expected (empty: assignable)."""
    out: list[Mismatch] = []
    _check(p, c, path, out, set())
    return out


def _check(
    p: Typed, c: Typed, path: str, out: list[Mismatch], busy: set[tuple[int, str, int, str]]
) -> None:
    pt, ct = _strip(p.type), _strip(c.type)
    pc, cc = _cardinality(pt), _cardinality(ct)
    if pc != cc:
        out.append(
            Mismatch("MW203", path, render_type(p.type), render_type(c.type), f"{pc} vs {cc}")
        )
        return
    if isinstance(pt, ListType) and isinstance(ct, ListType):
        _check(Typed(p.schema, pt.item), Typed(c.schema, ct.item), f"{path}[]", out, busy)
        return
    if isinstance(pt, MapType) and isinstance(ct, MapType):
        if pt.key.scalar != ct.key.scalar:
            out.append(
                Mismatch("MW201", f"{path}{{key}}", pt.key.scalar.value, ct.key.scalar.value)
            )
        _check(Typed(p.schema, pt.value), Typed(c.schema, ct.value), f"{path}{{}}", out, busy)
        return
    if isinstance(pt, ScalarType) and isinstance(ct, ScalarType):
        if pt.scalar != ct.scalar and (pt.scalar, ct.scalar) not in WIDENING:
            out.append(Mismatch("MW201", path, render_type(pt), render_type(ct)))
        return
    if isinstance(pt, TensorType) and isinstance(ct, TensorType):
        if pt.dtype and ct.dtype and pt.dtype != ct.dtype:
            out.append(Mismatch("MW204", path, render_type(pt), render_type(ct)))
        return
    if isinstance(pt, EnumType) and isinstance(ct, EnumType):
        try:
            pv = {n.upper() for n, _ in p.schema.enum(pt.name).values}
            cv = {n.upper() for n, _ in c.schema.enum(ct.name).values}
        except KeyError:
            return
        missing = sorted(pv - cv)
        if missing:
            out.append(
                Mismatch(
                    "MW201",
                    path,
                    render_type(pt),
                    render_type(ct),
                    f"{ct.name} lacks {', '.join(missing)}",
                )
            )
        return
    if isinstance(pt, MessageType) and isinstance(ct, MessageType):
        key = (id(p.schema), pt.name, id(c.schema), ct.name)
        if key in busy:  # recursive types: assume the cycle holds
            return
        busy.add(key)
        try:
            pmsg, cmsg = p.schema.message(pt.name), c.schema.message(ct.name)
        except KeyError:
            busy.discard(key)
            return
        pfields = {f.name: f for f in pmsg.fields}
        for cf in cmsg.fields:
            fpath = f"{path}.{cf.name}" if path else cf.name
            pf = pfields.get(cf.name)
            if pf is None:
                if not isinstance(cf.type, OptionalType):
                    out.append(
                        Mismatch(
                            "MW202",
                            fpath,
                            "",
                            render_type(cf.type),
                            f"{pt.name} has no field {cf.name!r}",
                        )
                    )
                continue
            _check(Typed(p.schema, pf.type), Typed(c.schema, cf.type), fpath, out, busy)
        busy.discard(key)
        return
    out.append(Mismatch("MW201", path, render_type(p.type), render_type(c.type)))


def wire_identical(p: Typed, c: Typed) -> bool:
    """Whether the consumer can parse the producer's bytes as they are.

    Holds when, for every field the consumer has and the producer shares by
    number, the two have the same name and a wire-compatible type, recursively,
    and every consumer field the producer lacks is optional (an assignable pair
    only). Extra producer fields become unknown fields, which parsers skip.
    """
    return _presence_kept(p.type, c.type) and _wire(p, c, set())


def _presence_kept(pt: TypeNode, ct: TypeNode) -> bool:
    """Whether a consumer reading these bytes sees a field as set exactly when it is.

    A proto3 scalar or enum without `optional` leaves a zero out of the bytes, so an
    `optional` consumer would read the producer's 0 as unset. (The other way round is
    fine: unset and 0 both read as 0; message fields always carry their presence.)
    """
    return not (
        isinstance(ct, OptionalType)
        and not isinstance(pt, OptionalType)
        and isinstance(pt, ScalarType | EnumType)
    )


def _wire(p: Typed, c: Typed, busy: set[tuple[int, str, int, str]]) -> bool:
    pt, ct = _strip(p.type), _strip(c.type)
    match pt, ct:
        case ScalarType(ps, _), ScalarType(cs, _):
            return ps == cs or (ps, cs) in _VARINT_COMPATIBLE
        case ListType(pi), ListType(ci):
            # a packed or unpacked repeated field of a compatible element
            return _wire(Typed(p.schema, pi), Typed(c.schema, ci), busy)
        case MapType(pk, pv), MapType(ck, cv):
            return pk.scalar == ck.scalar and _wire(Typed(p.schema, pv), Typed(c.schema, cv), busy)
        case TensorType(pd), TensorType(cd):
            return not (pd and cd and pd != cd)
        case EnumType(pn), EnumType(cn):
            try:
                pvals = dict(p.schema.enum(pn).values)
                cvals = dict(c.schema.enum(cn).values)
            except KeyError:
                return False
            return all(cvals.get(name) == num for name, num in pvals.items())
        case MessageType(pn), MessageType(cn):
            key = (id(p.schema), pn, id(c.schema), cn)
            if key in busy:
                return True
            busy.add(key)
            try:
                pmsg, cmsg = p.schema.message(pn), c.schema.message(cn)
            except KeyError:
                return False
            by_number = {f.number: f for f in pmsg.fields}
            by_name = {f.name: f for f in pmsg.fields}
            ok = True
            for cf in cmsg.fields:
                pf = by_number.get(cf.number)
                if pf is None:
                    if cf.name in by_name or not isinstance(cf.type, OptionalType):
                        ok = False
                        break
                    continue
                if pf.name != cf.name or _cardinality(pf.type) != _cardinality(cf.type):
                    ok = False
                    break
                if not _presence_kept(pf.type, cf.type):
                    ok = False
                    break
                if not _wire(Typed(p.schema, pf.type), Typed(c.schema, cf.type), busy):
                    ok = False
                    break
            busy.discard(key)
            return ok
    return False


def breaking_changes(old: ModelSchema, new: ModelSchema) -> list[str]:
    """Why clients of `old` would break against `new` (empty: `new` is compatible).

    Old requests must still be accepted (old request assignable to the new one)
    and new replies must still be understood (new response assignable to the old
    one); a removed method breaks its callers.
    """
    out = []
    for m in old.methods:
        try:
            n = new.method(m.name)
        except KeyError:
            out.append(f"method {m.name!r} was removed")
            continue
        for mm in assignable(
            Typed(old, MessageType(m.request)), Typed(new, MessageType(n.request))
        ):
            out.append(_describe(m.name, "request", mm))
        for mm in assignable(
            Typed(new, MessageType(n.response)), Typed(old, MessageType(m.response))
        ):
            out.append(_describe(m.name, "response", mm))
    return out


def _describe(method: str, side: str, mm: Mismatch) -> str:
    where = f"{side} field {mm.path!r}" if mm.path else side
    if mm.code == "MW202":
        if side == "request":
            return f"{method}: {where} is new and required (old clients do not send it)"
        return f"{method}: {where} was removed (old clients expect it)"
    was, now = (mm.producer, mm.consumer) if side == "request" else (mm.consumer, mm.producer)
    return f"{method}: {where} changed from {was} to {now}"

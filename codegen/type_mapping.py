"""Python types -> schema types: scalars, containers, Tensors, messages and enums.

`TypeMapper` maps one annotation at a time to a `TypeNode`, collecting the
NamedTuples, dataclasses and Enums it reaches as messages and enums, the wrapper
messages nested containers need, and the `Binding` from names back to classes.
Anything without a protobuf mapping raises `SchemaError` naming where it was met.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelwire.codegen.lowering import enum_value_prefix
from modelwire.codegen.naming import wrapper_name
from modelwire.codegen.python_types import (
    MAP_KEYS,
    NUMPY_SCALARS,
    PY_SCALARS,
    Binding,
    Hints,
    is_message_class,
    is_namedtuple,
    ndarray_dtype,
    own_doc,
    render_annotation,
    source_of,
    union_args,
)
from modelwire.codegen.schema import (
    RESERVED_NAMES,
    EnumSchema,
    EnumType,
    Field,
    ListType,
    MapType,
    Message,
    MessageType,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
    walk_types,
)
from modelwire.errors import SchemaError

__all__ = ["TypeMapper", "check_name"]

_PROTO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCALAR_NAMES = frozenset(s.value for s in Scalar)


def check_name(name: str, what: str, where: str, annotation: str = "") -> None:
    """Raise unless `name` is a valid protobuf identifier (Python also allows non-ASCII)."""
    if not _PROTO_NAME.match(name):
        raise SchemaError(
            f"{what} is not a valid protobuf name (ASCII letters, digits and '_'); rename it",
            annotation=annotation,
            where=where,
        )


def _proto_shape(t: TypeNode) -> TypeNode:
    """`t` as the wire sees it: numpy scalar types and Tensor dtypes are Python-only facts."""
    match t:
        case ScalarType(scalar, _):
            return ScalarType(scalar)
        case TensorType():
            return TensorType()
        case ListType(item):
            return ListType(_proto_shape(item))
        case MapType(key, value):
            return MapType(ScalarType(key.scalar), _proto_shape(value))
        case OptionalType(item):
            return OptionalType(_proto_shape(item))
    return t


@dataclass
class TypeMapper:
    """Maps annotations to schema types and collects the messages and enums they reach.

    Args:
        given: annotations resolved earlier (by a model being unpickled); when
            None, class annotations are read with `typing.get_type_hints`.
    """

    given: Hints | None = None
    hints: Hints = field(default_factory=Hints)
    binding: Binding = field(default_factory=Binding)
    messages: dict[str, Message] = field(default_factory=dict)
    enums: dict[str, EnumSchema] = field(default_factory=dict)
    # wrapper message name -> (the wire shape it carries, where it was first needed)
    wrappers: dict[str, tuple[TypeNode, str]] = field(default_factory=dict)
    enum_places: dict[str, str] = field(default_factory=dict)  # enum name -> where first met

    # ---------------------------------------------------------------- types

    def convert(self, ann: Any, where: str, *, top: bool = True) -> TypeNode:
        def fail(reason: str) -> SchemaError:
            text = render_annotation(ann)
            return SchemaError(
                f"annotation {text!r} has no protobuf mapping: {reason}",
                annotation=text,
                where=where,
            )

        if typing.get_origin(ann) is typing.Annotated:
            return self.convert(typing.get_args(ann)[0], where, top=top)
        if isinstance(ann, str | typing.ForwardRef):
            raise fail("it could not be resolved; define the type at module level")
        if ann in PY_SCALARS:
            return ScalarType(PY_SCALARS[ann])
        if ann in NUMPY_SCALARS:
            return ScalarType(NUMPY_SCALARS[ann], np.dtype(ann).name)
        if ann is np.ndarray or typing.get_origin(ann) is np.ndarray:
            return TensorType(ndarray_dtype(ann, fail))
        union = union_args(ann)
        if union is not None:
            rest = [a for a in union if a is not type(None)]
            if len(rest) != 1 or len(rest) == len(union):
                raise fail("unions other than Optional[T] are not supported")
            inner = self.convert(rest[0], where, top=False)
            if isinstance(inner, ListType | MapType):
                raise fail(
                    "repeated and map fields have no presence in proto3; "
                    "use the container itself (empty for none)"
                )
            if not top:
                raise fail(
                    "protobuf has no repeated or map value optional; "
                    "use the element type or a NamedTuple field that is Optional"
                )
            return OptionalType(inner)
        origin = typing.get_origin(ann)
        args = typing.get_args(ann)
        if origin in (list, typing.List):  # noqa: UP006 -- typing.List is what users write
            if not args:
                raise fail("a list needs an element type, e.g. list[float]")
            item = self.convert(args[0], where, top=False)
            self._wrapper(item, where, fail)
            return ListType(item)
        if origin in (dict, typing.Dict):  # noqa: UP006
            if len(args) != 2:
                raise fail("a dict needs key and value types, e.g. dict[str, float]")
            key = self.convert(args[0], where, top=False)
            if not isinstance(key, ScalarType) or key.scalar not in MAP_KEYS:
                raise fail("map keys must be str, int or bool")
            value = self.convert(args[1], where, top=False)
            self._wrapper(value, where, fail)
            return MapType(key, value)
        if ann in (list, dict):
            raise fail(f"a bare {ann.__name__} has no element type, e.g. {ann.__name__}[...]")
        if isinstance(ann, type) and issubclass(ann, enum.Enum):
            return EnumType(self.enum(ann, where))
        if is_message_class(ann):
            return MessageType(self.message(ann, where))
        raise fail(
            "supported are int, float, bool, str, bytes, numpy scalars, NDArray, "
            "list, dict, Optional, Enum, NamedTuple and dataclasses"
        )

    def _wrapper(self, t: TypeNode, where: str, fail: Callable[[str], SchemaError]) -> None:
        """Record the wrapper message a nested container needs; one name, one wire shape."""
        if not isinstance(t, ListType | MapType):
            return
        name, shape = wrapper_name(t), _proto_shape(t)
        seen = self.wrappers.setdefault(name, (shape, where))[0]
        if seen != shape:
            # only a class named like a scalar (`Double`) or a wrapper (`ListOfDouble`) does this
            named = sorted(
                {
                    n.name
                    for s in (seen, shape)
                    for n in walk_types(s)
                    if isinstance(n, MessageType | EnumType)
                }
            )
            raise fail(
                f"its wrapper message {name!r} already carries a different type; "
                f"rename {' or '.join(repr(n) for n in named)}"
            )

    # ---------------------------------------------------------------- named types

    def _claim(self, name: str, cls: type, where: str) -> bool:
        """True if `name` must still be defined; raises if another class owns it."""
        check_name(name, f"class name {name!r}", where, cls.__qualname__)
        if name in _SCALAR_NAMES:
            raise SchemaError(
                f"the name {name!r} is a protobuf scalar type; rename the class",
                annotation=cls.__qualname__,
                where=where,
            )
        if name in RESERVED_NAMES:
            raise SchemaError(
                f"the name {name!r} is reserved for modelwire's Tensor type; rename the class",
                annotation=cls.__qualname__,
                where=where,
            )
        owner = self.binding.messages.get(name) or self.binding.enums.get(name)
        if owner is None:
            return True
        if owner is not cls:
            raise SchemaError(
                f"two different types are named {name!r} "
                f"({source_of(owner)} and {source_of(cls)}); "
                "message names must be unique within a model",
                annotation=cls.__qualname__,
                where=where,
            )
        return False

    def enum(self, cls: type[enum.Enum], where: str) -> str:
        name = cls.__name__
        if not self._claim(name, cls, where):
            return name
        self.binding.enums[name] = cls
        self.enum_places[name] = where
        members = list(cls)
        if not members:
            raise SchemaError(
                f"enum {name!r} needs at least one member", annotation=name, where=where
            )
        raw = [m.value for m in members]
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in raw) and len(
            set(raw)
        ) == len(raw):
            numbers = raw
        else:
            numbers = list(range(1, len(members) + 1))
        upper = [m.name.upper() for m in members]
        for m in members:
            check_name(m.name, f"enum member '{name}.{m.name}'", where, name)
        if "UNSPECIFIED" in upper:
            member = members[upper.index("UNSPECIFIED")].name
            raise SchemaError(
                f"enum member '{name}.{member}' clashes with the zero value "
                f"'{enum_value_prefix(name)}UNSPECIFIED' that modelwire adds; rename the member",
                annotation=name,
                where=where,
            )
        if len(set(upper)) != len(upper):
            raise SchemaError(
                f"the members of enum {name!r} must differ in more than letter case",
                annotation=name,
                where=where,
            )
        self.enums[name] = EnumSchema(
            name, tuple((m.name, n) for m, n in zip(members, numbers, strict=True)), source_of(cls)
        )
        return name

    def class_fields(self, cls: type, where: str) -> list[tuple[str, Any]]:
        try:
            if self.given is not None and cls in self.given.classes:
                hints = self.given.classes[cls]
            else:
                hints = typing.get_type_hints(cls, include_extras=True)
        except Exception as exc:
            raise SchemaError(
                f"the annotations of {cls.__qualname__} could not be resolved ({exc})",
                annotation=cls.__qualname__,
                where=where,
            ) from exc
        if is_namedtuple(cls):
            names = list(cls._fields)  # type: ignore[attr-defined]
        else:
            names = [f.name for f in dataclasses.fields(cls) if f.init]
        for n in names:
            check_name(n, f"field '{cls.__qualname__}.{n}'", where, cls.__qualname__)
        missing = [n for n in names if n not in hints]
        if missing:
            raise SchemaError(
                f"field {missing[0]!r} of {cls.__qualname__} has no type annotation",
                annotation=cls.__qualname__,
                where=where,
            )
        self.hints.classes[cls] = {n: hints[n] for n in names}
        return [(n, hints[n]) for n in names]

    def message(self, cls: type, where: str) -> str:
        name = cls.__name__
        if not self._claim(name, cls, where):
            return name
        self.binding.messages[name] = cls
        fields = self.fields_of(cls, where)
        self.messages[name] = Message(name, fields, source_of(cls), own_doc(cls))
        return name

    def fields_of(self, cls: type, where: str) -> tuple[Field, ...]:
        return tuple(
            Field(fname, number, self.convert(ann, f"{where}, field '{cls.__name__}.{fname}'"))
            for number, (fname, ann) in enumerate(self.class_fields(cls, where), start=1)
        )

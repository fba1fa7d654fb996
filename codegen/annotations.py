"""Python annotations -> schema IR.

Reads the annotations of a model's methods (PEP 563 strings included), maps each
to a `TypeNode`, collects the NamedTuples, dataclasses and Enums they reach as
messages and enums, and records which Python class stands behind each message
(the `Binding`), so values can be converted both ways later.

Anything without a protobuf mapping raises `SchemaError` naming the method, the
parameter (or field) and the annotation.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelwire.codegen.schema import (
    DATA_TYPE_ENUM,
    RESERVED_NAMES,
    TENSOR_DTYPES,
    EnumSchema,
    EnumType,
    Field,
    ListType,
    MapType,
    Message,
    MessageType,
    Method,
    ModelSchema,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
    enum_value_prefix,
    rpc_name,
    walk_types,
    wrapper_name,
)
from modelwire.errors import SchemaError

__all__ = ["Binding", "Hints", "infer_schema", "render_annotation"]

_PY_SCALARS: Mapping[Any, Scalar] = {
    bool: Scalar.BOOL,
    int: Scalar.INT64,
    float: Scalar.DOUBLE,
    str: Scalar.STRING,
    bytes: Scalar.BYTES,
}

_NUMPY_SCALARS: Mapping[Any, Scalar] = {
    np.bool_: Scalar.BOOL,
    np.int8: Scalar.INT32,
    np.int16: Scalar.INT32,
    np.int32: Scalar.INT32,
    np.int64: Scalar.INT64,
    np.uint8: Scalar.UINT32,
    np.uint16: Scalar.UINT32,
    np.uint32: Scalar.UINT32,
    np.uint64: Scalar.UINT64,
    np.float16: Scalar.FLOAT,
    np.float32: Scalar.FLOAT,
    np.float64: Scalar.DOUBLE,
}

_MAP_KEYS = (Scalar.STRING, Scalar.INT64, Scalar.INT32, Scalar.UINT32, Scalar.UINT64, Scalar.BOOL)


@dataclass
class Binding:
    """Python classes behind the schema's messages and enums, by message/enum name."""

    messages: dict[str, type] = field(default_factory=dict)
    enums: dict[str, type[enum.Enum]] = field(default_factory=dict)


@dataclass
class Hints:
    """Resolved annotations: per method {parameter or 'return': type}, per class {field: type}.

    PEP 563 annotations are strings resolved against the defining module's
    globals, which do not travel with a pickled function or class. A model keeps
    the resolved objects and pickles them, so loading never evaluates strings.
    """

    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    classes: dict[type, dict[str, Any]] = field(default_factory=dict)


def render_annotation(ann: Any) -> str:
    """A readable form of an annotation: `list[int | None]`, `IrisInput`, `NDArray[uint8]`."""
    if ann is type(None):
        return "None"
    if isinstance(ann, type) and not typing.get_args(ann):
        return ann.__qualname__ if ann.__module__ != "builtins" else ann.__name__
    if isinstance(ann, str):
        return ann
    return str(ann).replace("typing.", "").replace("numpy.", "np.")


def _is_namedtuple(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, tuple) and hasattr(t, "_fields")


def _is_message_class(t: Any) -> bool:
    return _is_namedtuple(t) or (isinstance(t, type) and dataclasses.is_dataclass(t))


def _source(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def _own_doc(cls: type) -> str | None:
    """The class's docstring, unless it is the one namedtuple/dataclass generate."""
    doc = cls.__dict__.get("__doc__")
    if not doc or doc.startswith(f"{cls.__name__}("):
        return None
    return inspect.cleandoc(doc)


def _union_args(ann: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(ann)
    return None


_PROTO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCALAR_NAMES = frozenset(s.value for s in Scalar)


def _check_name(name: str, what: str, where: str, annotation: str = "") -> None:
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


def _ndarray_dtype(ann: Any, fail: Callable[[str], SchemaError]) -> str | None:
    args = typing.get_args(ann)
    if len(args) != 2:
        return None
    dtype_arg = args[1]
    inner = typing.get_args(dtype_arg)
    # a bare `NDArray` is parametrised by a TypeVar: the dtype is undeclared
    if not inner or inner[0] is Any or isinstance(inner[0], typing.TypeVar):
        return None
    scalar_type = inner[0]
    if scalar_type not in _NUMPY_SCALARS and scalar_type not in (np.complex64, np.complex128):
        raise fail(f"dtype {render_annotation(scalar_type)} cannot travel in a Tensor")
    name: str = np.dtype(scalar_type).name
    return name


@dataclass
class _Inferrer:
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
        if ann in _PY_SCALARS:
            return ScalarType(_PY_SCALARS[ann])
        if ann in _NUMPY_SCALARS:
            return ScalarType(_NUMPY_SCALARS[ann], np.dtype(ann).name)
        if ann is np.ndarray or typing.get_origin(ann) is np.ndarray:
            return TensorType(_ndarray_dtype(ann, fail))
        union = _union_args(ann)
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
            if not isinstance(key, ScalarType) or key.scalar not in _MAP_KEYS:
                raise fail("map keys must be str, int or bool")
            value = self.convert(args[1], where, top=False)
            self._wrapper(value, where, fail)
            return MapType(key, value)
        if ann in (list, dict):
            raise fail(f"a bare {ann.__name__} has no element type, e.g. {ann.__name__}[...]")
        if isinstance(ann, type) and issubclass(ann, enum.Enum):
            return EnumType(self.enum(ann, where))
        if _is_message_class(ann):
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
        _check_name(name, f"class name {name!r}", where, cls.__qualname__)
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
                f"two different types are named {name!r} ({_source(owner)} and {_source(cls)}); "
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
            _check_name(m.name, f"enum member '{name}.{m.name}'", where, name)
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
            name, tuple((m.name, n) for m, n in zip(members, numbers, strict=True)), _source(cls)
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
        if _is_namedtuple(cls):
            names = list(cls._fields)  # type: ignore[attr-defined]
        else:
            names = [f.name for f in dataclasses.fields(cls) if f.init]
        for n in names:
            _check_name(n, f"field '{cls.__qualname__}.{n}'", where, cls.__qualname__)
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
        self.messages[name] = Message(name, fields, _source(cls), _own_doc(cls))
        return name

    def fields_of(self, cls: type, where: str) -> tuple[Field, ...]:
        return tuple(
            Field(fname, number, self.convert(ann, f"{where}, field '{cls.__name__}.{fname}'"))
            for number, (fname, ann) in enumerate(self.class_fields(cls, where), start=1)
        )

    # ---------------------------------------------------------------- methods

    def method(self, name: str, fn: Callable[..., Any]) -> Method:
        where = f"method {name!r}"
        if not callable(fn):
            raise SchemaError(f"{fn!r} is not callable", where=where)
        given = self.given.methods.get(name) if self.given is not None else None
        try:
            if given is not None:
                sig = inspect.signature(fn)
                sig = sig.replace(
                    parameters=[
                        p.replace(annotation=given.get(p.name, p.annotation))
                        for p in sig.parameters.values()
                    ],
                    return_annotation=given.get("return", sig.return_annotation),
                )
            else:
                sig = inspect.signature(fn, eval_str=True)
        except NameError as exc:
            raise SchemaError(
                f"an annotation could not be resolved ({exc}); define the types at module level",
                where=where,
            ) from exc
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"its signature cannot be read ({exc})", where=where) from exc
        self.hints.methods[name] = {
            **{p.name: p.annotation for p in sig.parameters.values()},
            "return": sig.return_annotation,
        }
        rpc = rpc_name(name)
        request, response = f"{rpc}Request", f"{rpc}Response"
        doc = inspect.getdoc(fn) or None

        params = list(sig.parameters.values())
        for p in params:
            _check_name(p.name, f"parameter {p.name!r}", where)
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise SchemaError(
                    f"parameter {p.name!r}: *args and **kwargs cannot be mapped to a message",
                    where=where,
                )
            if p.annotation is p.empty:
                raise SchemaError(f"parameter {p.name!r} has no type annotation", where=where)
            if p.kind is p.POSITIONAL_ONLY:
                raise SchemaError(
                    f"parameter {p.name!r} is positional-only; requests set fields by name",
                    where=where,
                )

        single = params[0].annotation if len(params) == 1 else None
        if single is not None and typing.get_origin(single) is typing.Annotated:
            single = typing.get_args(single)[0]
        if single is not None and _is_message_class(single):
            pwhere = f"{where}, parameter {params[0].name!r}"
            self.message(single, pwhere)  # validates and registers nested types
            self._add_flat(request, single, pwhere, doc=None)
            param_names: tuple[str, ...] | None = None
        else:
            fields = tuple(
                Field(p.name, i, self.convert(p.annotation, f"{where}, parameter {p.name!r}"))
                for i, p in enumerate(params, start=1)
            )
            self._add_generated(request, fields, where)
            param_names = tuple(p.name for p in params)

        ret = sig.return_annotation
        rwhere = f"{where}, return value"
        if ret is sig.empty:
            raise SchemaError(
                "the return value has no type annotation (write '-> None' if it returns nothing)",
                where=where,
            )
        if typing.get_origin(ret) is typing.Annotated:
            ret = typing.get_args(ret)[0]
        if ret is None or ret is type(None):
            self._add_generated(response, (), where)
            returns = "none"
        elif _is_message_class(ret):
            self.message(ret, rwhere)
            self._add_flat(response, ret, rwhere, doc=None)
            returns = "message"
        else:
            value = self.convert(ret, rwhere)
            self._add_generated(response, (Field("value", 1, value),), where)
            returns = "value"
        return Method(name, rpc, request, response, param_names, returns, doc)

    def _add_flat(self, name: str, cls: type, where: str, doc: str | None) -> None:
        """A request/response message with the fields of `cls` (same wire format)."""
        fields = self.messages[cls.__name__].fields
        self._add_generated(name, fields, where, source=_source(cls))
        self.binding.messages[name] = cls

    def _add_generated(
        self, name: str, fields: tuple[Field, ...], where: str, source: str | None = None
    ) -> None:
        existing = self.messages.get(name)
        if existing is not None:
            if existing.fields == fields:
                return
            raise SchemaError(
                f"the generated message {name!r} clashes with a class of the same name; "
                "rename the class",
                annotation=name,
                where=where,
            )
        if name in RESERVED_NAMES or name in self.enums:
            raise SchemaError(
                f"the generated message {name!r} clashes with another type", where=where
            )
        self.messages[name] = Message(name, fields, source)


def infer_schema(
    methods: Mapping[str, Callable[..., Any]],
    *,
    package: str,
    service: str,
    name: str,
    hints: Hints | None = None,
) -> tuple[ModelSchema, Binding, Hints]:
    """Infer the schema of a model's methods.

    Args:
        methods: method name -> annotated callable, in declaration order.
        package: the proto package, e.g. ``modelwire.models.iris.v1``.
        service: the service name, e.g. ``IrisService``.
        name: the model's name.
        hints: annotations resolved earlier (by a model being unpickled); when
            None, annotations are read and PEP 563 strings evaluated.

    Returns:
        The schema, the Python classes behind its messages and enums, and the
        resolved annotations.

    Raises:
        SchemaError: an annotation has no mapping, or two types clash.
    """
    inf = _Inferrer(given=hints)
    seen_rpcs: dict[str, str] = {}
    out_methods = []
    for mname, fn in methods.items():
        if not mname.isidentifier():
            raise SchemaError(f"method name {mname!r} is not a Python identifier")
        m = inf.method(mname, fn)
        if m.rpc in seen_rpcs:
            raise SchemaError(
                f"methods {seen_rpcs[m.rpc]!r} and {mname!r} both map to rpc {m.rpc!r}"
            )
        seen_rpcs[m.rpc] = mname
        out_methods.append(m)
    order: dict[str, int] = {}
    for m in out_methods:
        order[m.request] = len(order)
        order[m.response] = len(order)
    reachable = _reachable(inf.messages, [n for m in out_methods for n in (m.request, m.response)])
    messages = sorted(
        (m for m in inf.messages.values() if m.name in reachable),
        key=lambda m: (order.get(m.name, len(order)), m.name),
    )
    enums = sorted((e for e in inf.enums.values() if e.name in reachable), key=lambda e: e.name)
    schema = ModelSchema(name, package, service, tuple(out_methods), tuple(messages), tuple(enums))
    taken = {m.name for m in messages} | {e.name for e in enums}
    for wname, (_, where) in sorted(inf.wrappers.items()):
        if wname in taken:
            raise SchemaError(
                f"the generated wrapper message {wname!r} clashes with a class of the same "
                "name; rename the class",
                annotation=wname,
                where=where,
            )
    _check_enum_values(schema, inf.enum_places)
    return schema, inf.binding, inf.hints


def _check_enum_values(schema: ModelSchema, places: Mapping[str, str]) -> None:
    """Enum value names live in the package scope: two enums must not produce the same one."""
    owners: dict[str, str] = {}
    uses_tensor = any(
        isinstance(node, TensorType)
        for m in schema.messages
        for f in m.fields
        for node in walk_types(f.type)
    )
    if uses_tensor:
        prefix = enum_value_prefix(DATA_TYPE_ENUM)
        owners.update(
            dict.fromkeys((prefix + n for n, _ in TENSOR_DTYPES.values()), DATA_TYPE_ENUM)
        )
        owners[prefix + "UNSPECIFIED"] = DATA_TYPE_ENUM
    for e in schema.enums:
        prefix = enum_value_prefix(e.name)
        for value in [prefix + "UNSPECIFIED", *(prefix + n.upper() for n, _ in e.values)]:
            other = owners.setdefault(value, e.name)
            if other != e.name:
                raise SchemaError(
                    f"enums {other!r} and {e.name!r} would both define the proto enum value "
                    f"{value!r} (enum values share the package scope); rename one of them",
                    annotation=e.name,
                    where=places.get(e.name, ""),
                )


def _reachable(messages: Mapping[str, Message], roots: list[str]) -> set[str]:
    """Names of the messages and enums reachable from the rpcs' requests and responses."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        msg = messages.get(name)
        if msg is None:
            continue
        for f in msg.fields:
            for node in walk_types(f.type):
                if isinstance(node, MessageType | EnumType):
                    todo.append(node.name)
    return seen

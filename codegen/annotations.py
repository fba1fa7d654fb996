"""Python annotations -> schema IR.

Reads the annotations of a model's methods (PEP 563 strings included), maps each
to a `TypeNode`, collects the NamedTuples, dataclasses and Enums they reach as
messages and enums, and records which Python class stands behind each message
(the `Binding`), so values can be converted both ways later. Each annotation is
mapped by `modelwire.codegen.type_mapping`; this module turns signatures into
request and response messages and assembles the schema. A batched method's batch
function (a `list[T]` per parameter -> `list[R]`) gets the schema of the per-request
method it serves (`T -> R`): batching is invisible on the wire.

Anything without a protobuf mapping raises `SchemaError` naming the method, the
parameter (or field) and the annotation.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any

from modelwire.codegen.lowering import enum_value_prefix
from modelwire.codegen.naming import rpc_name
from modelwire.codegen.python_types import (
    Binding,
    Hints,
    is_message_class,
    render_annotation,
    source_of,
)
from modelwire.codegen.schema import (
    DATA_TYPE_ENUM,
    RESERVED_NAMES,
    TENSOR_DTYPES,
    EnumType,
    Field,
    Message,
    MessageType,
    Method,
    ModelSchema,
    TensorType,
    walk_types,
)
from modelwire.codegen.type_mapping import TypeMapper, check_name
from modelwire.errors import SchemaError

__all__ = ["Binding", "Hints", "infer_schema"]


class _Inferrer(TypeMapper):
    """The type mapper, plus the request and response messages of each method."""

    def method(self, name: str, fn: Callable[..., Any], *, batched: bool = False) -> Method:
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
        if batched:
            sig = _per_request(sig, where)
        rpc = rpc_name(name)
        request, response = f"{rpc}Request", f"{rpc}Response"
        doc = inspect.getdoc(fn) or None

        params = list(sig.parameters.values())
        for p in params:
            check_name(p.name, f"parameter {p.name!r}", where)
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
        if single is not None and is_message_class(single):
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
        elif is_message_class(ret):
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
        self._add_generated(name, fields, where, source=source_of(cls))
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
    batched: Collection[str] = (),
) -> tuple[ModelSchema, Binding, Hints]:
    """Infer the schema of a model's methods.

    Args:
        methods: method name -> annotated callable, in declaration order.
        package: the proto package, e.g. ``modelwire.models.iris.v1``.
        service: the service name, e.g. ``IrisService``.
        name: the model's name.
        hints: annotations resolved earlier (by a model being unpickled); when
            None, annotations are read and PEP 563 strings evaluated.
        batched: the methods whose callable is a batch function: each parameter is
            annotated `list[T]` and the return `list[R]`, and the rpc is the
            per-request `T -> R` (the hints keep the list annotations).

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
        m = inf.method(mname, fn, batched=mname in batched)
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


def _per_request(sig: inspect.Signature, where: str) -> inspect.Signature:
    """A batch function's signature as the per-request method it serves: `list[T]` -> `T`
    for each parameter and the return value."""
    params = list(sig.parameters.values())
    if not params:
        raise SchemaError(
            "a @batched method needs a parameter annotated list[T], one T per request",
            where=where,
        )
    items = []
    for p in params:
        if p.annotation is p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            items.append(p)  # refused with the unbatched method's message
            continue
        item = _list_item(p.annotation)
        if item is None:
            text = render_annotation(p.annotation)
            raise SchemaError(
                f"parameter {p.name!r} of a @batched method must be annotated list[T], one T "
                f"per request; got {text!r}",
                annotation=text,
                where=where,
            )
        items.append(p.replace(annotation=item))
    ret = sig.return_annotation
    if ret is sig.empty:
        return sig.replace(parameters=items)
    item = _list_item(ret)
    if item is None:
        text = "None" if ret is None else render_annotation(ret)
        raise SchemaError(
            "the return value of a @batched method must be annotated list[R], one R per "
            f"request, in order; got {text!r}",
            annotation=text,
            where=where,
        )
    return sig.replace(parameters=items, return_annotation=item)


def _list_item(annotation: Any) -> Any:
    """T for `list[T]` (also inside Annotated[...]), else None."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and len(args) == 1:
        return args[0]
    return None


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

"""Call arguments -> a method's request value: the one argument binder.

`modelwire.connect()`'s methods and `modelwire.load()`'s methods take the same call
shapes because both bind their arguments here, before encoding the request:

* the request's fields by position, by keyword, or both: ``add(1.5, b=2)``;
* one dict of the fields: ``add({"a": 1.5, "b": 2})``;
* one NamedTuple or dataclass instance with the fields: ``classify(IrisInput(...))``.

Too many positional arguments, an unknown or repeated keyword, and a missing field
that has no default on the wire (a message, a Tensor or an enum that is not
`Optional`; a missing number is proto3's 0) raise `TypeError` with the method's name,
as Python does for a function. Values are checked when they are encoded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from modelwire.codegen.schema import (
    EnumType,
    MapType,
    Message,
    MessageType,
    Method,
    OptionalType,
    TensorType,
)

__all__ = ["ArgumentBinder", "is_message_like"]


def is_message_like(v: Any) -> bool:
    """A dict, a NamedTuple or a dataclass instance: a value that can stand for a message."""
    return (
        isinstance(v, Mapping)
        or (isinstance(v, tuple) and hasattr(v, "_fields"))
        or (dataclasses.is_dataclass(v) and not isinstance(v, type))
    )


class ArgumentBinder:
    """Binds one method's call arguments to its request value.

    Args:
        method: the method.
        request: its request message.
    """

    def __init__(self, method: Method, request: Message) -> None:
        self.name = method.name
        self.fields = [f.name for f in request.fields]
        self._required = {
            f.name: _no_default(f.type)
            for f in request.fields
            if isinstance(f.type, MessageType | TensorType | EnumType)
        }
        # f(p: Point, k: int) or f(d: dict[str, int]): a lone dict/namedtuple argument is
        # the first field's value, not the whole request
        first = request.fields[0].type if request.fields else None
        if isinstance(first, OptionalType):
            first = first.item
        self._first_takes_message = method.params is not None and isinstance(
            first, MessageType | MapType
        )

    def bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """The request value: the one message-like argument, or a dict of the fields.

        Raises:
            TypeError: too many arguments, an unknown or repeated one, or a missing
                field that has no default.
        """
        if (
            len(args) == 1
            and not kwargs
            and not self._first_takes_message
            and is_message_like(args[0])
        ):
            value = args[0]
            if isinstance(value, Mapping):
                self._check_complete(value)
            return value
        if len(args) > len(self.fields):
            raise TypeError(
                f"{self.name}() takes {len(self.fields)} arguments "
                f"({', '.join(self.fields)}), {len(args)} given"
            )
        fields = dict(zip(self.fields, args, strict=False))
        for k, v in kwargs.items():
            if k not in self.fields:
                raise TypeError(
                    f"{self.name}() got an unexpected argument {k!r}; "
                    f"fields are {', '.join(self.fields) or '(none)'}"
                )
            if k in fields:
                raise TypeError(f"{self.name}() got multiple values for {k!r}")
            fields[k] = v
        self._check_complete(fields)
        return fields

    def _check_complete(self, fields: Mapping[str, Any]) -> None:
        for name, what in self._required.items():
            if name not in fields:
                raise TypeError(f"{self.name}() missing argument {name!r} ({what} has no default)")
            if fields[name] is None:
                raise TypeError(f"{self.name}() argument {name!r} is None, but it is not Optional")


def _no_default(t: MessageType | TensorType | EnumType) -> str:
    if isinstance(t, MessageType):
        return f"a {t.name} message"
    if isinstance(t, TensorType):
        return "a Tensor"
    return f"the enum {t.name}"

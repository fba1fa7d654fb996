"""Enum values: the Python members behind a schema's enums, by wire number and back.

Where a model binds no Enum class (a client of any gRPC server), one is generated
from the schema and recorded in the binding, so every side decodes to the same
members.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import numpy as np

from modelwire.codegen.converters import EncodeError, describe
from modelwire.codegen.python_types import Binding
from modelwire.codegen.schema import ModelSchema

__all__ = ["EnumTable"]


class EnumTable:
    """The members of each enum of one schema, built once per enum.

    Args:
        schema: the model's schema.
        binding: the Python classes behind enums; generated ones are added to it.
    """

    def __init__(self, schema: ModelSchema, binding: Binding) -> None:
        self.schema = schema
        self.binding = binding
        self._enum_by_number: dict[str, dict[int, Any]] = {}
        self._number_by_enum: dict[str, Callable[[Any, str], int]] = {}

    def members(self, name: str) -> dict[int, Any]:
        """Wire number -> member of enum `name`."""
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

    def number(self, name: str) -> Callable[[Any, str], int]:
        """A strict member (or member name, or number) -> wire number conversion."""
        f = self._number_by_enum.get(name)
        if f is None:
            members = self.members(name)
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
                raise EncodeError(where, f"expected a member of {name}, got {describe(v)}")

            f = self._number_by_enum[name] = number
        return f


def _make_enum(name: str, values: list[tuple[str, int]]) -> type[enum.Enum]:
    return enum.Enum(name, values)  # type: ignore[return-value]  # functional API

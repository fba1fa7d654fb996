"""The solution's schema: messages and enums copied from the models' schemas.

The solution's messages are copies of the models' messages with the same field
numbers, so client bytes pass through as they are. Where two models define
different types of one name, the copy is renamed with a prefix.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelwire.codegen.schema import (
    EnumSchema,
    EnumType,
    Field,
    ListType,
    MapType,
    Message,
    MessageType,
    ModelSchema,
    OptionalType,
    TypeNode,
)

__all__ = ["SchemaCopier"]


class SchemaCopier:
    """Copies messages and enums from model schemas into the solution's schema."""

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, EnumSchema] = {}
        self._names: dict[tuple[int, str], str] = {}

    def _claim(
        self,
        schema: ModelSchema,
        name: str,
        prefix: str,
        definition: object,
        table: Mapping[str, object],
    ) -> tuple[str, bool]:
        key = (id(schema), name)
        if key in self._names:
            return self._names[key], False
        candidate = name
        n = 1
        while candidate in table or candidate in self.messages or candidate in self.enums:
            existing = table.get(candidate)
            if existing == definition:
                self._names[key] = candidate
                return candidate, False
            candidate = f"{prefix}{name}" if n == 1 else f"{prefix}{name}{n}"
            n += 1
        self._names[key] = candidate
        return candidate, True

    def type(self, schema: ModelSchema, t: TypeNode, prefix: str) -> TypeNode:
        match t:
            case OptionalType(item):
                return OptionalType(self.type(schema, item, prefix))
            case ListType(item):
                return ListType(self.type(schema, item, prefix))
            case MapType(key, value):
                return MapType(key, self.type(schema, value, prefix))
            case EnumType(name):
                src = schema.enum(name)
                new, fresh = self._claim(schema, name, prefix, src, self.enums)
                if fresh:
                    self.enums[new] = EnumSchema(new, src.values, src.source)
                return EnumType(new)
            case MessageType(name):
                return MessageType(self.message(schema, name, prefix))
        return t

    def message(
        self, schema: ModelSchema, name: str, prefix: str, as_name: str | None = None
    ) -> str:
        src = schema.message(name)
        if as_name is not None:
            new, fresh = as_name, as_name not in self.messages
        else:
            new, fresh = self._claim(schema, name, prefix, None, self.messages)
        if fresh:
            self.messages[new] = Message(new, (), src.source, src.doc)  # placeholder for cycles
            fields = tuple(
                Field(f.name, f.number, self.type(schema, f.type, prefix)) for f in src.fields
            )
            self.messages[new] = Message(new, fields, src.source, src.doc)
        return new

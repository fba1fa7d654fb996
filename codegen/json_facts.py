"""What the JSON form of a schema's messages needs to know beyond the proto: field JSON
names, and which fields carry Tensors of which declared dtype.

A Tensor on the wire says its own dtype; the schema may pin it (`NDArray[np.float32]`).
The JSON face needs that to turn nested JSON arrays into the right dtype, and the
OpenAPI document to write an example of it. Pure: no protobuf, no numpy.
"""

from __future__ import annotations

from modelwire.codegen.schema import ListType, MapType, ModelSchema, OptionalType, TensorType

__all__ = ["json_name", "tensor_dtypes"]


def json_name(name: str) -> str:
    """A field's proto3 JSON name, as protoc derives it: `sepal_length` -> `sepalLength`."""
    out, upper = [], False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


def tensor_dtypes(schema: ModelSchema) -> dict[tuple[str, str], str | None]:
    """(message, field) -> the dtype declared for each Tensor field (None: any dtype).

    Covers `NDArray` fields, optional ones, and the elements of lists and the values of
    maps of them; a Tensor inside a nested container's wrapper message takes any dtype.
    """
    out: dict[tuple[str, str], str | None] = {}
    for message in schema.messages:
        for f in message.fields:
            t = f.type
            if isinstance(t, OptionalType | ListType):
                t = t.item
            elif isinstance(t, MapType):
                t = t.value
            if isinstance(t, TensorType):
                out[(message.name, f.name)] = t.dtype
    return out

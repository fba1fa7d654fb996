"""Build a step's request from other messages' bytes, decoding as little as possible.

Protobuf's wire format lets the router assemble messages by concatenation:
a message is a sequence of (tag, value) records, and a field of a consumer
message can be filled by copying a producer's records for the same data under
the consumer's field number. So where the types are wire-identical
(`modelwire.codegen.compat.wire_identical`) the router never decodes:

* `wrap(number, payload)`: a whole message as the field `number` of another;
* `extract(buf, path)`: the records of the field at `path` (field numbers from
  the top), with the value bytes untouched;
* `retag(records, number)`: those records under another field number.

Where the types are only assignable, `transcode()` decodes with the producer's
message class and copies field by field, by name, into the consumer's class;
enum values are matched by name through `EnumMaps`, made once per plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message as PbMessage

from modelwire.codegen.wire import encode_varint, read_varint

__all__ = [
    "EnumMaps",
    "Record",
    "SpliceError",
    "copy_field",
    "extract",
    "merged_payload",
    "records",
    "retag",
    "transcode",
    "wrap",
]

_WT_VARINT, _WT_I64, _WT_LEN, _WT_I32 = 0, 1, 2, 5


class SpliceError(ValueError):
    """Malformed bytes from a model service."""


@dataclass(frozen=True, slots=True)
class Record:
    """One field occurrence: `value` spans the value bytes (without a LEN prefix)."""

    number: int
    wire_type: int
    start: int  # of the value (after the tag, and after the length for LEN)
    end: int


def records(buf: bytes, start: int = 0, end: int | None = None) -> Iterator[Record]:
    """The field records of the message in `buf[start:end]`."""
    end = len(buf) if end is None else end
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos, end, SpliceError)
        number, wt = key >> 3, key & 7
        if number == 0:
            raise SpliceError("field number 0")
        if wt == _WT_VARINT:
            vstart = pos
            _, pos = read_varint(buf, pos, end, SpliceError)
        elif wt == _WT_I64:
            vstart, pos = pos, pos + 8
        elif wt == _WT_I32:
            vstart, pos = pos, pos + 4
        elif wt == _WT_LEN:
            ln, vstart = read_varint(buf, pos, end, SpliceError)
            pos = vstart + ln
        else:
            raise SpliceError(f"unsupported wire type {wt}")
        if pos > end:
            raise SpliceError("field runs past the end of the message")
        yield Record(number, wt, vstart, pos)


def extract(buf: bytes, path: tuple[int, ...]) -> list[Record]:
    """Every record of the field at `path`, following singular message fields down."""
    spans = [(0, len(buf))]
    for depth, number in enumerate(path):
        last = depth == len(path) - 1
        found: list[Record] = []
        for s, e in spans:
            found.extend(r for r in records(buf, s, e) if r.number == number)
        if last:
            return found
        spans = [(r.start, r.end) for r in found if r.wire_type == _WT_LEN]
    return []


def retag(buf: bytes, recs: list[Record], number: int) -> list[bytes | memoryview]:
    """The records' values under field `number` (wire types and value bytes kept)."""
    mv = memoryview(buf)
    out: list[bytes | memoryview] = []
    for r in recs:
        tag = encode_varint((number << 3) | r.wire_type)
        if r.wire_type == _WT_LEN:
            out.append(tag + encode_varint(r.end - r.start))
        else:
            out.append(tag)
        out.append(mv[r.start : r.end])
    return out


def wrap(number: int, payload: bytes | memoryview) -> list[bytes | memoryview]:
    """`payload` (a serialized message) as field `number` of an enclosing message."""
    return [encode_varint((number << 3) | _WT_LEN) + encode_varint(len(payload)), payload]


def merged_payload(buf: bytes, recs: list[Record]) -> list[bytes | memoryview]:
    """The value bytes of message records, concatenated: protobuf merges them on parse."""
    mv = memoryview(buf)
    return [mv[r.start : r.end] for r in recs]


# ---------------------------------------------------------------- transcoding


def _enum_key(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


class EnumMaps:
    """Enum number maps for transcoding, each made once and kept as long as this object.

    A map is keyed by the two enum descriptors themselves, not by their `id()`: the key
    holds them, so it cannot come to name another enum after a descriptor pool is
    collected. A plan owns one (`SolutionPlan.enum_maps`), for the pools of its schemas.
    """

    def __init__(self) -> None:
        self._maps: dict[tuple[Any, Any], dict[int, int]] = {}

    def get(self, src: Any, dst: Any) -> dict[int, int]:
        """Source enum number -> destination number, matching value names without prefixes
        (a source value the destination lacks becomes 0)."""
        got = self._maps.get((src, dst))
        if got is None:
            from modelwire.codegen.lowering import enum_value_prefix

            sp, dp = enum_value_prefix(src.name), enum_value_prefix(dst.name)
            by_key = {_enum_key(v.name, dp): v.number for v in dst.values}
            got = {v.number: by_key.get(_enum_key(v.name, sp), 0) for v in src.values}
            self._maps[(src, dst)] = got
        return got


def _is_repeated(fd: Any) -> bool:
    # protobuf 7 dropped FieldDescriptor.label; `is_repeated` is not in every 5.x release
    is_repeated = getattr(fd, "is_repeated", None)
    if is_repeated is not None:
        return bool(is_repeated)
    return bool(fd.label == FieldDescriptor.LABEL_REPEATED)


def transcode(src: PbMessage, dst: PbMessage, enums: EnumMaps | None = None) -> None:
    """Copy `src` into `dst` field by field, by name; fields `dst` lacks are dropped.

    Enum values are converted by name with the maps in `enums` (new ones, for this call
    only, when None).
    """
    enums = EnumMaps() if enums is None else enums
    sfields: Any = src.DESCRIPTOR.fields_by_name
    dst_fields: Any = dst.DESCRIPTOR.fields
    for fd in dst_fields:
        if fd.name in sfields:
            copy_field(src, fd.name, dst, fd.name, enums)


def copy_field(
    src: PbMessage, src_name: str, dst: PbMessage, dst_name: str, enums: EnumMaps | None = None
) -> None:
    """Copy one field's value from `src` to `dst`, converting messages and enums by name."""
    enums = EnumMaps() if enums is None else enums
    # descriptors are typed loosely here: upb's and the pure-Python classes differ in stubs
    sfd: Any = src.DESCRIPTOR.fields_by_name[src_name]
    fd: Any = dst.DESCRIPTOR.fields_by_name[dst_name]
    value = getattr(src, src_name)
    is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
    if is_map:
        target = getattr(dst, dst_name)
        vfd = fd.message_type.fields_by_name["value"]
        svfd = sfd.message_type.fields_by_name["value"]
        if vfd.type == FieldDescriptor.TYPE_MESSAGE:
            for k, v in value.items():
                transcode(v, target[k], enums)
        elif vfd.type == FieldDescriptor.TYPE_ENUM:
            conv = enums.get(svfd.enum_type, vfd.enum_type)
            for k, v in value.items():
                target[k] = conv.get(v, 0)
        else:
            target.update(value)
    elif _is_repeated(fd):
        target = getattr(dst, dst_name)
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                transcode(item, target.add(), enums)
        elif fd.type == FieldDescriptor.TYPE_ENUM:
            conv = enums.get(sfd.enum_type, fd.enum_type)
            target.extend(conv.get(v, 0) for v in value)
        else:
            target.extend(value)
    elif fd.type == FieldDescriptor.TYPE_MESSAGE:
        if src.HasField(src_name):
            sub = getattr(dst, dst_name)
            sub.SetInParent()
            transcode(value, sub, enums)
    else:
        if sfd.has_presence and not src.HasField(src_name):
            return
        if fd.type == FieldDescriptor.TYPE_ENUM:
            value = enums.get(sfd.enum_type, fd.enum_type).get(value, 0)
        setattr(dst, dst_name, value)

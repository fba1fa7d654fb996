"""Hypothesis properties of the type -> proto mapping (STYLE.md section 11).

(a) every annotation maps or raises SchemaError naming it, nothing else;
(b) mapped annotations round-trip random values between our codec and the protobuf runtime,
    through stubs that grpcio-tools compiles from the rendered proto, both ways;
(c) codegen is deterministic, agrees with protoc, and never renumbers fields.
"""

from __future__ import annotations

import hashlib
import tempfile
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from modelwire.bundle.model import Model
from modelwire.codegen.descriptors import (
    file_descriptor,
    message_classes,
    proto_file_name,
    schema_from_descriptor,
)
from modelwire.codegen.proto import render_proto
from modelwire.codegen.schema import ModelSchema
from modelwire.codegen.values import ValueCodec
from modelwire.errors import SchemaError
from tests.codegen.stubvalues import plain, read_fields, write_fields
from tests.codegen.toolchain import StubCache, protoc_descriptor
from tests.strategies import annotations, any_annotations, field_lists, kind_of, values


def function_of(annotation: Any) -> Callable[..., Any]:
    """`f(x: annotation) -> annotation`, the identity."""

    def f(x):  # type: ignore[no-untyped-def]
        return x

    f.__annotations__ = {"x": annotation, "return": annotation}
    return f


def named_model(annotation: Any) -> tuple[Model, ModelSchema]:
    """The identity model, named after its proto so equal protos share a package."""
    model = Model(f=function_of(annotation))
    digest = hashlib.sha256(render_proto(model.schema).encode()).hexdigest()[:16]
    schema, _ = model.named(f"h{digest}", "1.0.0")
    return model, schema


# ---------------------------------------------------------------- (a) maps or refuses


@given(any_annotations())
def test_every_annotation_maps_or_raises_schema_error(annotation: Any):
    try:
        model = Model(f=function_of(annotation))
    except SchemaError as exc:
        message = str(exc)
        assert exc.where.startswith("method 'f', parameter 'x'"), message
        assert message.startswith(exc.where + ": ")
        assert "\n" not in message
        # the message quotes the annotation it refuses (or a member of that enum)
        assert exc.annotation, message
        quoted = (f"'{exc.annotation}'", f"'{exc.annotation}.")
        assert any(q in message[len(exc.where) :] for q in quoted), message
        return
    # a mapped annotation gives a proto the protobuf runtime accepts, one class per message
    schema = model.schema
    classes = message_classes(file_descriptor(schema))
    for message_schema in schema.messages:
        full_name = classes.get(message_schema.name).DESCRIPTOR.full_name
        assert full_name == f"{schema.package}.{message_schema.name}"


# ---------------------------------------------------------------- (b) round trips


def request_fields(annotation: Any) -> tuple[tuple[str, Any], ...]:
    """The request's fields: a message parameter is flattened, anything else is field `x`."""
    kind, arg = kind_of(annotation)
    return arg if kind == "message" else (("x", annotation),)  # type: ignore[no-any-return]


def response_fields(annotation: Any) -> tuple[tuple[str, Any], ...]:
    kind, arg = kind_of(annotation)
    return arg if kind == "message" else (("value", annotation),)  # type: ignore[no-any-return]


def as_fields(annotation: Any, value: Any, name: str) -> Any:
    return value if kind_of(annotation)[0] == "message" else {name: value}


def assert_same_value(annotation: Any, expected: Any, got: Any, where: str = "value") -> None:
    """`got` is `expected`: same types (numpy scalars, classes, dtypes) and same contents."""
    kind, arg = kind_of(annotation)
    if kind == "optional":
        if expected is None:
            assert got is None, where
        else:
            assert_same_value(arg, expected, got, where)
    elif kind == "list":
        assert isinstance(got, list), where
        assert len(got) == len(expected), where
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            assert_same_value(arg, e, g, f"{where}[{i}]")
    elif kind == "dict":
        assert isinstance(got, dict), where
        assert len(got) == len(expected), where
        for k in got:
            assert type(k) is type(next(iter(expected))), f"{where}: key {k!r}"
        for k, e in expected.items():
            assert_same_value(arg[1], e, got[k], f"{where}[{k!r}]")
    elif kind == "message":
        assert type(got) is type(expected), where
        for name, t in arg:
            assert_same_value(t, getattr(expected, name), getattr(got, name), f"{where}.{name}")
    elif kind == "enum":
        assert got is expected, where
    elif kind == "tensor":
        assert isinstance(got, np.ndarray), where
        assert got.dtype == expected.dtype.newbyteorder("="), where
        assert plain(annotation, got) == plain(annotation, expected), where
    else:
        assert type(got) is type(expected), f"{where}: {type(got)} is not {type(expected)}"
        assert got == expected, where


@given(annotation=annotations(), data=st.data())
def test_codec_and_protoc_stubs_read_each_other(
    annotation: Any, data: st.DataObject, stub_cache: StubCache
):
    model, schema = named_model(annotation)
    stubs = stub_cache.module(render_proto(schema))
    codec = ValueCodec(schema, message_classes(file_descriptor(schema)), model.binding).method("f")
    req_fields, resp_fields = request_fields(annotation), response_fields(annotation)
    flat = kind_of(annotation)[0] == "message"

    for value in data.draw(st.lists(values(annotation), min_size=1, max_size=3), label="values"):
        expected = plain(annotation, value)
        req, resp = as_fields(annotation, value, "x"), as_fields(annotation, value, "value")

        # our codec -> protobuf runtime
        got = read_fields(req_fields, stubs.FRequest.FromString(codec.encode_request((value,), {})))
        assert got == plain_fields(req_fields, req)
        got = read_fields(resp_fields, stubs.FResponse.FromString(codec.encode_response(value)))
        assert got == plain_fields(resp_fields, resp)

        # protobuf runtime -> our codec
        request = stubs.FRequest()
        write_fields(req_fields, request, req)
        args, kwargs = codec.decode_request(request.SerializeToString())
        assert_same_value(annotation, value, args[0] if flat else kwargs["x"])
        response = stubs.FResponse()
        write_fields(resp_fields, response, resp)
        assert_same_value(annotation, value, codec.decode_response(response.SerializeToString()))
        assert plain(annotation, value) == expected  # decoding never touched the input


def plain_fields(fields: tuple[tuple[str, Any], ...], value: Any) -> dict[str, Any]:
    get = value.get if isinstance(value, dict) else lambda name: getattr(value, name)
    return {name: plain(t, get(name)) for name, t in fields}


# ---------------------------------------------------------------- (c) determinism


@given(annotations())
def test_codegen_is_deterministic_and_agrees_with_protoc(annotation: Any):
    first = Model(f=function_of(annotation)).schema
    second = Model(f=function_of(annotation)).schema
    assert first == second
    proto = render_proto(first)
    assert render_proto(second) == proto
    fdp = file_descriptor(first)
    with tempfile.TemporaryDirectory(prefix="mw-protoc-") as tmp:
        assert protoc_descriptor(proto, proto_file_name(first.package), Path(tmp)) == fdp
    # reading the descriptor back describes the same proto
    assert file_descriptor(schema_from_descriptor(fdp)) == fdp


@given(fields=field_lists(annotations(max_leaves=3)), added=annotations(max_leaves=3))
def test_appending_a_field_never_renumbers_the_others(
    fields: tuple[tuple[str, Any], ...], added: Any
):
    v1 = typing.NamedTuple("Record", list(fields))  # type: ignore[misc]
    v2 = typing.NamedTuple("Record", [*fields, ("appended_field", added)])  # type: ignore[misc]

    def numbers(cls: type) -> dict[str, int]:
        schema = Model(f=function_of(cls)).schema
        return {f.name: f.number for f in schema.message("FRequest").fields}

    old, new = numbers(v1), numbers(v2)
    assert old == {name: i for i, (name, _) in enumerate(fields, start=1)}
    assert new == {**old, "appended_field": len(fields) + 1}

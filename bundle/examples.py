"""A bundle's examples: requests, and the answers the model gave them at dump time.

`record_examples()` runs at dump: each example request is encoded as a client would
send it, decoded and passed to the model as the runtime would, and the answer is
encoded as the runtime would send it. Both are stored as protobuf wire bytes
(serialized deterministically) under ``examples/<method>/<n>.request.pb`` and
``.response.pb``, listed in the manifest and covered by its digests, so a zip and a
directory hold the same examples and any gRPC client can replay them.

An example is given as the model's method takes it: the argument of a one-parameter
method (a NamedTuple, a dataclass, a float, ...), a dict of keyword arguments for a
method of several parameters, or a `JsonRequest` (protobuf's JSON mapping, as
`modelwire call` and `dump --example` take it).

`example_calls()` lists what a validation sends for each method, without unpickling
anything: the recorded examples, or for a method without any a request generated from
its schema (`modelwire.codegen.synthetic`), whose answer nobody recorded.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelwire.bundle.manifest import EXAMPLES_DIR, ExampleFiles, Manifest
from modelwire.codegen.schema import Method, ModelSchema
from modelwire.errors import ModelwireError

if TYPE_CHECKING:
    from modelwire.codegen.python_types import Binding
    from modelwire.codegen.values import MethodCodec, ValueCodec

__all__ = [
    "Example",
    "ExampleCall",
    "ExampleKind",
    "JsonRequest",
    "decode_examples",
    "example_calls",
    "parse_example_option",
    "record_examples",
]


@dataclass(frozen=True)
class JsonRequest:
    """An example request in protobuf's JSON mapping, e.g. ``'{"sepal_length": [5.1]}'``."""

    text: str


@dataclass(frozen=True)
class Example:
    """One example, as `load()` gives it back.

    Attributes:
        method: the model's method.
        request: what the method takes: its argument, or a dict of keyword arguments
            for a method of several parameters.
        response: what the method returned at dump time (decoded as the runtime sends it).
    """

    method: str
    request: Any
    response: Any


class ExampleKind(enum.Enum):
    """Where a validation's request came from."""

    RECORDED = "recorded"  # an example stored at dump, with the answer the model gave
    GENERATED = "generated"  # made from the schema: only "loads and answers" is checked


@dataclass(frozen=True)
class ExampleCall:
    """One request a validation sends.

    Attributes:
        method: the model's method.
        index: its position among the method's calls (0-based).
        kind: recorded or generated.
        request: the request's wire bytes.
        response: the recorded answer's wire bytes; None for a generated request.
    """

    method: str
    index: int
    kind: ExampleKind
    request: bytes
    response: bytes | None


def _codec(schema: ModelSchema, binding: Binding | None) -> ValueCodec:
    from modelwire.codegen.descriptors import file_descriptor, message_classes
    from modelwire.codegen.values import ValueCodec

    return ValueCodec(schema, message_classes(file_descriptor(schema)), binding)


def _canonical(codec: ValueCodec, message: str, data: bytes) -> bytes:
    """The same message, serialized deterministically (map entries sorted)."""
    out: bytes = codec.classes.get(message).FromString(data).SerializeToString(deterministic=True)
    return out


def _encode(codec: ValueCodec, method: Method, example: Any, where: str) -> bytes:
    """An example request -> its wire bytes, as a client would send them."""
    if isinstance(example, JsonRequest):
        from google.protobuf import json_format

        cls = codec.classes.get(method.request)
        try:
            payload = json.loads(example.text)
            message = json_format.ParseDict(payload, cls())
        except (ValueError, json_format.ParseError) as exc:
            raise ValueError(f"{where}: not a valid {method.request} in JSON: {exc}") from None
        data: bytes = message.SerializeToString(deterministic=True)
        return data
    mc = codec.method(method.name)
    try:
        if method.params is not None and len(method.params) > 1:
            if not isinstance(example, Mapping):
                raise TypeError(
                    f"expected a dict of keyword arguments ({', '.join(method.params)}), "
                    f"got {type(example).__name__}"
                )
            return mc.encode_request((), dict(example))
        return mc.encode_request((example,), {})
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: the request does not fit {method.request}: {exc}") from None


def _answer(fn: Callable[..., Any], mc: MethodCodec, request: bytes, where: str) -> bytes:
    """What the runtime would answer `request` with."""
    from modelwire.codegen.values import EncodeError

    args, kwargs = mc.decode_request(request)
    try:
        result = fn(*args, **kwargs)
    except (Exception, SystemExit) as exc:
        raise ModelwireError(
            f"{where}: the model raised {type(exc).__name__}: {exc}; fix the example or the model"
        ) from exc
    try:
        return mc.encode_response(result)
    except EncodeError as exc:
        raise ModelwireError(
            f"{where}: the model returned a value that does not fit its declared response ({exc})"
        ) from exc


def record_examples(
    methods: Mapping[str, Callable[..., Any]],
    schema: ModelSchema,
    binding: Binding,
    examples: Mapping[str, Sequence[Any]],
) -> tuple[dict[str, bytes], dict[str, tuple[ExampleFiles, ...]]]:
    """Call the model on every example; return the files and their manifest entry.

    Raises:
        ValueError: a method the model does not have, or a JsonRequest that is not
            valid JSON of the request message.
        TypeError: an example that does not fit the method's request.
        ModelwireError: the model raised on an example, or answered with a value
            that does not fit its response.
    """
    codec = _codec(schema, binding)
    files: dict[str, bytes] = {}
    entries: dict[str, tuple[ExampleFiles, ...]] = {}
    for name, listed in examples.items():
        try:
            method = schema.method(name)
        except KeyError:
            have = ", ".join(m.name for m in schema.methods)
            raise ValueError(
                f"examples given for {name!r}, which is not a method of the model "
                f"(its methods: {have})"
            ) from None
        if not isinstance(listed, list | tuple) or hasattr(listed, "_fields"):
            raise TypeError(
                f"the examples of {name!r} must be a list of requests, got {type(listed).__name__}"
            )
        mc = codec.method(name)
        found = []
        for i, example in enumerate(listed):
            where = f"example {i} of {name!r}"
            request = _encode(codec, method, example, where)
            response = _answer(methods[name], mc, request, where)
            stem = f"{EXAMPLES_DIR}/{name}/{i}"
            files[f"{stem}.request.pb"] = _canonical(codec, method.request, request)
            files[f"{stem}.response.pb"] = _canonical(codec, method.response, response)
            found.append(ExampleFiles(f"{stem}.request.pb", f"{stem}.response.pb"))
        if found:
            entries[name] = tuple(found)
    return files, entries


def example_calls(manifest: Manifest, read: Callable[[str], bytes]) -> tuple[ExampleCall, ...]:
    """Every request a validation sends, method by method in schema order.

    Args:
        manifest: the bundle's manifest.
        read: reads one of the bundle's files (digests already checked), e.g. `Bundle.read`.
    """
    from modelwire.codegen.synthetic import synthetic_request

    calls: list[ExampleCall] = []
    codec: ValueCodec | None = None
    for method in manifest.schema.methods:
        recorded = manifest.examples.get(method.name, ())
        for i, files in enumerate(recorded):
            calls.append(
                ExampleCall(
                    method.name, i, ExampleKind.RECORDED, read(files.request), read(files.response)
                )
            )
        if not recorded:
            codec = codec or _codec(manifest.schema, None)
            value = synthetic_request(manifest.schema, method.name)
            mc = codec.method(method.name)
            request = (
                mc.encode_request((value,), {})
                if method.params is None
                else mc.encode_request((), value)
            )
            calls.append(
                ExampleCall(
                    method.name,
                    0,
                    ExampleKind.GENERATED,
                    _canonical(codec, method.request, request),
                    None,
                )
            )
    return tuple(calls)


def decode_examples(
    manifest: Manifest, binding: Binding, read: Callable[[str], bytes]
) -> dict[str, tuple[Example, ...]]:
    """The examples as Python values, decoded with the model's own classes (`load()`)."""
    codec = _codec(manifest.schema, binding)
    out: dict[str, tuple[Example, ...]] = {}
    for name, listed in manifest.examples.items():
        method = manifest.schema.method(name)
        mc = codec.method(name)
        decoded = []
        for files in listed:
            args, kwargs = mc.decode_request(read(files.request))
            if method.params is None:
                request: Any = args[0]
            elif len(method.params) == 1:
                request = kwargs[method.params[0]]
            else:
                request = kwargs
            decoded.append(Example(name, request, mc.decode_response(read(files.response))))
        out[name] = tuple(decoded)
    return out


def parse_example_option(values: Sequence[str]) -> dict[str, list[JsonRequest]]:
    """`METHOD=JSON` texts (`dump --example`, repeatable) -> examples by method.

    Raises:
        ValueError: a text without `=`, or with no method name before it.
    """
    out: dict[str, list[JsonRequest]] = {}
    for text in values:
        method, sep, payload = text.partition("=")
        if not sep or not method.strip():
            raise ValueError(
                f"{text!r} is not METHOD=JSON (e.g. classify='{{\"sepal_length\": [5.1]}}')"
            )
        out.setdefault(method.strip(), []).append(JsonRequest(payload))
    return out

"""What modelwire reads from Python types, before any schema exists.

The scalar tables (Python and numpy types -> protobuf scalars), the tests for
message classes (NamedTuples and dataclasses), NDArray dtypes, readable names of
annotations, and the two records annotation inference hands on: the `Binding`
(the Python classes behind messages and enums) and the `Hints` (the resolved
annotations).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelwire.codegen.schema import Scalar
from modelwire.errors import SchemaError

__all__ = [
    "MAP_KEYS",
    "NUMPY_SCALARS",
    "PY_SCALARS",
    "Binding",
    "Hints",
    "is_message_class",
    "is_namedtuple",
    "ndarray_dtype",
    "own_doc",
    "render_annotation",
    "source_of",
    "union_args",
]

PY_SCALARS: Mapping[Any, Scalar] = {
    bool: Scalar.BOOL,
    int: Scalar.INT64,
    float: Scalar.DOUBLE,
    str: Scalar.STRING,
    bytes: Scalar.BYTES,
}

NUMPY_SCALARS: Mapping[Any, Scalar] = {
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

MAP_KEYS = (Scalar.STRING, Scalar.INT64, Scalar.INT32, Scalar.UINT32, Scalar.UINT64, Scalar.BOOL)


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


def is_namedtuple(t: Any) -> bool:
    """True for a NamedTuple (or namedtuple) class."""
    return isinstance(t, type) and issubclass(t, tuple) and hasattr(t, "_fields")


def is_message_class(t: Any) -> bool:
    """True for a class that maps to a message: a NamedTuple or a dataclass."""
    return is_namedtuple(t) or (isinstance(t, type) and dataclasses.is_dataclass(t))


def source_of(t: type) -> str:
    """Where a class is defined, `module.QualName`: the source of its message or enum."""
    return f"{t.__module__}.{t.__qualname__}"


def own_doc(cls: type) -> str | None:
    """The class's docstring, unless it is the one namedtuple/dataclass generate."""
    doc = cls.__dict__.get("__doc__")
    if not doc or doc.startswith(f"{cls.__name__}("):
        return None
    return inspect.cleandoc(doc)


def union_args(ann: Any) -> tuple[Any, ...] | None:
    """The members of a `Union[...]` or `X | Y` annotation; None for anything else."""
    origin = typing.get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(ann)
    return None


def ndarray_dtype(ann: Any, fail: Callable[[str], SchemaError]) -> str | None:
    """The dtype an `NDArray[...]` annotation declares; None when it declares none."""
    args = typing.get_args(ann)
    if len(args) != 2:
        return None
    dtype_arg = args[1]
    inner = typing.get_args(dtype_arg)
    # a bare `NDArray` is parametrised by a TypeVar: the dtype is undeclared
    if not inner or inner[0] is Any or isinstance(inner[0], typing.TypeVar):
        return None
    scalar_type = inner[0]
    if scalar_type not in NUMPY_SCALARS and scalar_type not in (np.complex64, np.complex128):
        raise fail(f"dtype {render_annotation(scalar_type)} cannot travel in a Tensor")
    name: str = np.dtype(scalar_type).name
    return name

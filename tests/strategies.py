"""Hypothesis strategies: type annotations (supported and not) and values of an annotation.

`annotations()` draws annotations that DESIGN.md's type mapping supports; `any_annotations()`
mixes in shapes it refuses. NamedTuples, dataclasses and Enums are built on the fly and
cached by structure: drawing the same structure twice gives the same class, so a model never
holds two different classes of one name (which codegen rightly refuses).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import types
import typing
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

__all__ = [
    "MAP_KEYS",
    "NUMPY_SCALARS",
    "PY_SCALARS",
    "TENSOR_DTYPES",
    "annotations",
    "any_annotations",
    "enums",
    "field_lists",
    "kind_of",
    "values",
]

PY_SCALARS: tuple[type, ...] = (bool, int, float, str, bytes)
NUMPY_SCALARS: tuple[type, ...] = (
    np.bool_,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.float16,
    np.float32,
    np.float64,
)
TENSOR_DTYPES: tuple[type, ...] = (*NUMPY_SCALARS, np.complex64, np.complex128)
MAP_KEYS: tuple[type, ...] = (str, int, bool, np.int8, np.int32, np.int64, np.uint16, np.uint64)

FIELD_NAMES = ("a", "b", "score", "label", "x_1", "values", "value", "count", "name", "data")
MEMBER_NAMES = ("RED", "GREEN", "BLUE", "dark_red", "Light", "X1", "on_hold")

# ---------------------------------------------------------------- classes built on the fly

_CLASSES: dict[tuple[Any, ...], type] = {}


def _digest(key: tuple[Any, ...]) -> str:
    return hashlib.sha256(repr(key).encode()).hexdigest()[:10]


def _record(kind: str, fields: tuple[tuple[str, Any], ...]) -> type:
    """A NamedTuple or dataclass with these fields; one class per structure."""
    key = (kind, fields)
    cls = _CLASSES.get(key)
    if cls is None:
        name = f"{'Rec' if kind == 'namedtuple' else 'Data'}{_digest(key)}"
        if kind == "namedtuple":
            cls = typing.NamedTuple(name, list(fields))  # type: ignore[misc]
        else:
            cls = dataclasses.make_dataclass(name, list(fields))
        cls.__module__ = __name__
        _CLASSES[key] = cls
    return cls


def _enum(members: tuple[tuple[str, Any], ...]) -> type[enum.Enum]:
    key = ("enum", members)
    cls = _CLASSES.get(key)
    if cls is None:
        cls = enum.Enum(f"Enum{_digest(key)}", list(members), module=__name__)  # type: ignore[misc]
        _CLASSES[key] = cls
    return cls  # type: ignore[return-value]


# ---------------------------------------------------------------- annotations


@st.composite
def enums(draw: st.DrawFn) -> type[enum.Enum]:
    """Enums with int values (kept when all positive and distinct) or other values."""
    names = draw(st.lists(st.sampled_from(MEMBER_NAMES), min_size=1, max_size=4, unique=True))
    style = draw(st.sampled_from(["auto", "positive", "zero-based", "strings"]))
    if style == "positive":
        numbers = draw(
            st.lists(
                st.integers(1, 2**31 - 1), min_size=len(names), max_size=len(names), unique=True
            )
        )
    elif style == "zero-based":
        numbers = list(range(len(names)))
    elif style == "strings":
        numbers = [n.lower() for n in names]  # type: ignore[misc]
    else:
        numbers = list(range(1, len(names) + 1))
    return _enum(tuple(zip(names, numbers, strict=True)))


def tensors() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([np.ndarray, NDArray[Any], NDArray]),
        st.sampled_from(TENSOR_DTYPES).map(lambda dtype: NDArray[dtype]),
    )


def _leaves() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(PY_SCALARS), st.sampled_from(NUMPY_SCALARS), tensors(), enums()
    )


def _is_container(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (list, dict)


def field_lists(field: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[tuple[str, Any], ...]]:
    """(name, annotation) pairs with distinct names, as a NamedTuple's fields."""
    return st.lists(
        st.tuples(st.sampled_from(FIELD_NAMES), field),
        min_size=1,
        max_size=4,
        unique_by=lambda pair: pair[0],
    ).map(tuple)


def _field(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """What may stand as a field or parameter: the type, or Optional of a non-container."""
    return st.one_of(
        inner,
        inner.filter(lambda t: not _is_container(t)).map(lambda t: t | None),
    )


def _records(fields: st.SearchStrategy[tuple[tuple[str, Any], ...]]) -> st.SearchStrategy[type]:
    return st.builds(_record, st.sampled_from(["namedtuple", "dataclass"]), fields)


def annotations(max_leaves: int = 5) -> st.SearchStrategy[Any]:
    """Annotations that DESIGN.md's table maps, as they may appear on a parameter."""

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            inner.map(lambda t: list[t]),
            st.tuples(st.sampled_from(MAP_KEYS), inner).map(lambda kv: dict[kv[0], kv[1]]),
            _records(field_lists(_field(inner))),
        )

    return _field(st.recursive(_leaves(), extend, max_leaves=max_leaves))


class Status(enum.Enum):
    """An enum codegen refuses: its member clashes with the zero value it adds."""

    UNSPECIFIED = 1
    READY = 2


Tensor = typing.NamedTuple("Tensor", [("values", list[float])])  # noqa: UP014 -- reserved name

UNSUPPORTED: tuple[Any, ...] = (
    Any,
    object,
    complex,
    None,
    type(None),
    list,
    dict,
    typing.List,  # noqa: UP006
    tuple[int, int],
    set[str],
    typing.Union[int, str],  # noqa: UP007
    np.datetime64,
    np.complex64,
    NDArray[np.str_],
    Status,
    Tensor,
)
BAD_KEYS: tuple[Any, ...] = (float, bytes, np.float32, tuple[int, int])


def any_annotations(max_leaves: int = 5) -> st.SearchStrategy[Any]:
    """Supported and unsupported annotations, nested every way the typing syntax allows."""
    leaves = st.one_of(_leaves(), st.sampled_from(UNSUPPORTED))

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        keys = st.sampled_from(MAP_KEYS + BAD_KEYS)
        return st.one_of(
            inner.map(lambda t: list[t]),
            inner.map(lambda t: typing.List[t]),  # noqa: UP006
            st.tuples(keys, inner).map(lambda kv: dict[kv[0], kv[1]]),
            st.tuples(keys, inner).map(lambda kv: typing.Dict[kv[0], kv[1]]),  # noqa: UP006
            inner.map(lambda t: typing.Optional[t]),  # noqa: UP045
            st.tuples(inner, inner).map(lambda ab: typing.Union[ab[0], ab[1]]),  # noqa: UP007
            _records(field_lists(inner)),
        )

    return st.recursive(leaves, extend, max_leaves=max_leaves)


# ---------------------------------------------------------------- reading annotations


def kind_of(annotation: Any) -> tuple[str, Any]:
    """The shape of a supported annotation: ('optional', T), ('list', T), ('dict', (K, V)),
    ('message', ((name, T), ...)), ('enum', cls), ('tensor', dtype or None), ('scalar', T)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        (inner,) = [a for a in args if a is not type(None)]
        return "optional", inner
    if origin is list:
        return "list", args[0]
    if origin is dict:
        return "dict", args
    if annotation is np.ndarray or origin is np.ndarray:
        dtype = typing.get_args(args[1])[0] if args else None
        declared = isinstance(dtype, type) and issubclass(dtype, np.generic)
        return "tensor", np.dtype(dtype) if declared else None
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "enum", annotation
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or hasattr(annotation, "_fields")
    ):
        return "message", tuple(typing.get_type_hints(annotation).items())
    return "scalar", annotation


# ---------------------------------------------------------------- values

_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=8)


def _scalar_values(annotation: type) -> st.SearchStrategy[Any]:
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(-(2**63), 2**63 - 1)
    if annotation is float:
        return st.floats(allow_nan=False)
    if annotation is str:
        return _TEXT
    if annotation is bytes:
        return st.binary(max_size=8)
    if annotation is np.bool_:
        return st.booleans().map(np.bool_)
    dtype = np.dtype(annotation)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return st.integers(int(info.min), int(info.max)).map(annotation)
    return st.floats(width=dtype.itemsize * 8, allow_nan=False).map(annotation)  # type: ignore[arg-type]


def values(annotation: Any) -> st.SearchStrategy[Any]:
    """Values a model may take or return for a supported annotation."""
    kind, arg = kind_of(annotation)
    if kind == "optional":
        return st.none() | values(arg)
    if kind == "list":
        return st.lists(values(arg), max_size=3)
    if kind == "dict":
        return st.dictionaries(values(arg[0]), values(arg[1]), max_size=3)
    if kind == "enum":
        return st.sampled_from(list(arg))
    if kind == "tensor":
        dtypes = st.just(arg) if arg is not None else st.sampled_from(TENSOR_DTYPES).map(np.dtype)
        return dtypes.flatmap(lambda dtype: hnp.arrays(dtype, _SHAPES))
    if kind == "message":
        return st.builds(annotation, **{name: values(t) for name, t in arg})
    return _scalar_values(arg)

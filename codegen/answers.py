"""Comparing an answer to the one recorded: the first difference, by field path.

Both answers are values decoded by the same codec (`ValueCodec` without a binding:
namedtuples, lists, dicts, ndarrays, enums), walked along the schema's types, so a
difference names the field path as a client writes it (`boxes[2].label`,
`scores['cat']`, `image[0, 3]`). The rules, which the validation report repeats:

- floating-point numbers (scalars and tensor elements) are equal when
  ``|got - expected| <= abs + rel * |expected|`` (numpy's `isclose`), NaN equal to NaN:
  ``rel=1e-6, abs=1e-9`` for 64-bit values, ``rel=1e-4, abs=1e-6`` for 32- and 16-bit
  ones (`float` fields, float32/float16 tensors), which carry about 7 and 3 digits;
- tensors are equal when their dtype and shape are equal and then their elements;
- lists are equal item by item (the same length first), maps key by key (the same keys
  first); everything else (integers, strings, bytes, booleans, enums) exactly.

This module is pure: no I/O, no protobuf imports.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelwire.codegen.schema import (
    EnumType,
    ListType,
    MapType,
    MessageType,
    Method,
    ModelSchema,
    OptionalType,
    Scalar,
    ScalarType,
    TensorType,
    TypeNode,
)

__all__ = ["DEFAULT_TOLERANCE", "Difference", "Tolerance", "compare", "compare_response"]

_SHOWN = 60  # characters of a value a difference shows


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far floating-point answers may drift from the recorded ones (see the module)."""

    rel: float = 1e-6
    abs: float = 1e-9
    rel32: float = 1e-4
    abs32: float = 1e-6

    def for_bits(self, bits: int) -> tuple[float, float]:
        """(rel, abs) for floats of `bits` bits."""
        return (self.rel, self.abs) if bits >= 64 else (self.rel32, self.abs32)


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True, slots=True)
class Difference:
    """Where an answer first differs from the recorded one.

    Attributes:
        path: the field path, e.g. ``iris_type[0]``; "" for the answer as a whole.
        expected: the recorded value there, as text (clipped).
        got: the value received there, as text (clipped).
        more: how many more elements of the same tensor differ.
    """

    path: str
    expected: str
    got: str
    more: int = 0

    def __str__(self) -> str:
        text = f"{self.path or 'the answer'}: expected {self.expected}, got {self.got}"
        return text + (f" ({self.more} more elements differ)" if self.more else "")


def compare_response(
    schema: ModelSchema,
    method: Method,
    expected: Any,
    got: Any,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> Difference | None:
    """Compare two answers of `method`, as `MethodCodec.decode_response` returns them."""
    if method.returns == "none":
        return None
    if method.returns == "value":
        t = schema.message(method.response).fields[0].type
        return _Walk(schema, tolerance).compare(t, expected, got, "value")
    return _Walk(schema, tolerance).compare(MessageType(method.response), expected, got, "")


def compare(
    schema: ModelSchema,
    t: TypeNode,
    expected: Any,
    got: Any,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> Difference | None:
    """The first difference between two decoded values of type `t`, or None."""
    return _Walk(schema, tolerance).compare(t, expected, got, "")


def _show(v: Any) -> str:
    """A value as a difference shows it: its repr, clipped."""
    if isinstance(v, np.ndarray):
        text = np.array2string(v, threshold=8, separator=", ").replace("\n", "")
    elif isinstance(v, np.generic):
        text = repr(v.item())
    else:
        text = repr(v.name if hasattr(v, "name") and hasattr(v, "value") else v)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _field(v: Any, index: int, name: str) -> Any:
    if isinstance(v, Mapping):
        return v.get(name)
    if isinstance(v, tuple):  # generated namedtuples may rename a field, never reorder
        return v[index]
    return getattr(v, name)


class _Walk:
    def __init__(self, schema: ModelSchema, tolerance: Tolerance) -> None:
        self.schema = schema
        self.tolerance = tolerance

    def compare(self, t: TypeNode, want: Any, got: Any, path: str) -> Difference | None:
        match t:
            case OptionalType(item):
                if want is None or got is None:
                    return None if want is None and got is None else _diff(path, want, got)
                return self.compare(item, want, got, path)
            case MessageType(name):
                for i, f in enumerate(self.schema.message(name).fields):
                    where = f"{path}.{f.name}" if path else f.name
                    found = self.compare(
                        f.type, _field(want, i, f.name), _field(got, i, f.name), where
                    )
                    if found is not None:
                        return found
                return None
            case ListType(item):
                return self._sequence(item, want, got, path)
            case MapType(_, value):
                return self._mapping(value, want, got, path)
            case TensorType():
                return self._tensor(np.asarray(want), np.asarray(got), path)
            case ScalarType(scalar, numpy):
                if scalar in (Scalar.DOUBLE, Scalar.FLOAT):
                    bits = (
                        np.dtype(numpy).itemsize * 8
                        if numpy
                        else (64 if scalar is Scalar.DOUBLE else 32)
                    )
                    return None if self._close(want, got, bits) else _diff(path, want, got)
                return None if _same(want, got) else _diff(path, want, got)
            case EnumType():
                same = getattr(want, "name", want) == getattr(got, "name", got)
                return None if same else _diff(path, want, got)
        raise TypeError(f"not a type node: {t!r}")

    def _close(self, want: Any, got: Any, bits: int) -> bool:
        try:
            a, b = float(want), float(got)
        except (TypeError, ValueError):
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        rel, tol = self.tolerance.for_bits(bits)
        return abs(b - a) <= tol + rel * abs(a)

    def _sequence(self, item: TypeNode, want: Any, got: Any, path: str) -> Difference | None:
        if isinstance(want, np.ndarray):
            want = list(want)
        if isinstance(got, np.ndarray):
            got = list(got)
        if not isinstance(want, Sequence) or not isinstance(got, Sequence):
            return _diff(path, want, got)
        if len(want) != len(got):
            return Difference(path, f"{len(want)} items", f"{len(got)} items")
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            found = self.compare(item, a, b, f"{path}[{i}]")
            if found is not None:
                return found
        return None

    def _mapping(self, value: TypeNode, want: Any, got: Any, path: str) -> Difference | None:
        if not isinstance(want, Mapping) or not isinstance(got, Mapping):
            return _diff(path, want, got)
        missing = [k for k in want if k not in got]
        if missing:
            return Difference(f"{path}[{missing[0]!r}]", _show(want[missing[0]]), "no such key")
        extra = [k for k in got if k not in want]
        if extra:
            return Difference(f"{path}[{extra[0]!r}]", "no such key", _show(got[extra[0]]))
        for k in sorted(want, key=repr):
            found = self.compare(value, want[k], got[k], f"{path}[{k!r}]")
            if found is not None:
                return found
        return None

    def _tensor(self, want: np.ndarray, got: np.ndarray, path: str) -> Difference | None:
        if want.dtype != got.dtype:
            return Difference(path, f"dtype {want.dtype.name}", f"dtype {got.dtype.name}")
        if want.shape != got.shape:
            return Difference(path, f"shape {want.shape}", f"shape {got.shape}")
        if want.dtype.kind in "fc":
            rel, tol = self.tolerance.for_bits(
                want.dtype.itemsize * 8 // (2 if want.dtype.kind == "c" else 1)
            )
            equal = np.isclose(got, want, rtol=rel, atol=tol, equal_nan=True)
        else:
            equal = got == want
        if bool(np.all(equal)):
            return None
        bad = np.argwhere(~np.asarray(equal))
        first = tuple(int(i) for i in bad[0])
        where = f"{path}[{', '.join(map(str, first))}]" if first else path
        return Difference(where, _show(want[first]), _show(got[first]), len(bad) - 1)


def _same(want: Any, got: Any) -> bool:
    try:
        return bool(want == got)
    except (TypeError, ValueError):
        return False


def _diff(path: str, want: Any, got: Any) -> Difference:
    return Difference(path, _show(want), _show(got))

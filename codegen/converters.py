"""What every value converter shares: its signature, its errors and how they name values.

A converter turns one value of a field into another representation and is built
once per schema type (`modelwire.codegen.decoding`, `modelwire.codegen.encoding`).
Malformed input raises `DecodeError` (a ValueError); a value that does not fit
its field raises `EncodeError` (a TypeError). Both name the field path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "DecodeError",
    "Decoder",
    "Deferred",
    "EncodeError",
    "Encoder",
    "Path",
    "describe",
    "join_path",
]

Path = tuple[int, ...]
Deferred = list[tuple[Path, memoryview]]
Encoder = Callable[[Any, "Deferred | None", Path], Any]
Decoder = Callable[[Any, "Mapping[Path, np.ndarray] | None", Path], Any]


class DecodeError(ValueError):
    """Received bytes or values do not match the schema (the sender's fault)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)


class EncodeError(TypeError):
    """A value does not fit the field it is meant for."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}" if where else reason)


def join_path(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def describe(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of {v.dtype}"
    text = repr(v)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(v).__name__} {text}"

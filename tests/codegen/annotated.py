"""The smallest models around one annotation, for the type-mapping and schema-error tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelwire.bundle.model import Model


def param_model(annotation: Any) -> Callable[..., Any]:
    """`predict(x: annotation) -> int`."""

    def predict(x):  # type: ignore[no-untyped-def]
        return 0

    predict.__annotations__ = {"x": annotation, "return": int}
    return predict


def field_model(annotation: Any) -> Model:
    """`f(x: annotation, tag: str) -> bool`: two parameters, so `x` is never flattened."""

    def f(x, tag):  # type: ignore[no-untyped-def]
        return True

    f.__annotations__ = {"x": annotation, "tag": str, "return": bool}
    return Model(f=f)

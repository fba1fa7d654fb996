"""The contributor's API: `Model(**methods)` and `create_namedtuple`.

A `Model` is a set of named, annotated Python callables. Building one infers its
schema at once, so an unsupported annotation fails here, naming the method,
the parameter and the annotation, not later when the model is served. A method
may be a batch function (`@modelwire.batched`, `modelwire.bundle.batching`): the
model's method is then its per-request call, with the batch function as `.batch`.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from modelwire.bundle.batching import BatchedMethod
from modelwire.codegen.annotations import Binding, Hints, infer_schema
from modelwire.codegen.naming import package_name, service_name
from modelwire.codegen.schema import ModelSchema

__all__ = ["Model", "create_namedtuple"]

_PLACEHOLDER = "model"


class Model:
    """A model: one or more named methods, each an annotated Python callable.

    Example:
        >>> class IrisInput(typing.NamedTuple):
        ...     sepal_length: list[float]
        >>> def classify(x: IrisInput) -> list[int]:
        ...     return [0 for _ in x.sepal_length]
        >>> model = Model(classify=classify)
        >>> model.classify(IrisInput([5.1]))
        [0]

    Raises:
        SchemaError: a method's annotations have no protobuf mapping.
        TypeError: no methods were given.
    """

    def __init__(self, **methods: Callable[..., Any]) -> None:
        if not methods:
            raise TypeError("Model() needs at least one method, e.g. Model(classify=fn)")
        self._init(methods)

    def _init(self, methods: dict[str, Callable[..., Any]], hints: Hints | None = None) -> None:
        self.methods: dict[str, Callable[..., Any]] = dict(methods)
        # a batched method's schema comes from its batch function's list annotations
        functions = {
            name: fn.batch if isinstance(fn, BatchedMethod) else fn
            for name, fn in self.methods.items()
        }
        self.schema, self.binding, self._hints = infer_schema(
            functions,
            package=package_name(_PLACEHOLDER, "1"),
            service=service_name(_PLACEHOLDER),
            name=_PLACEHOLDER,
            hints=hints,
            batched=[n for n, fn in self.methods.items() if isinstance(fn, BatchedMethod)],
        )

    def named(self, name: str, version: str) -> tuple[ModelSchema, Binding]:
        """The schema under the model's published name and version."""
        return (
            replace(
                self.schema,
                name=name,
                package=package_name(name, version),
                service=service_name(name),
            ),
            self.binding,
        )

    def __getattr__(self, name: str) -> Callable[..., Any]:
        methods = self.__dict__.get("methods", {})
        try:
            return methods[name]  # type: ignore[no-any-return]
        except KeyError:
            raise AttributeError(
                f"model has no method {name!r}; it has {', '.join(methods) or 'none'}"
            ) from None

    def __dir__(self) -> Iterable[str]:
        return [*super().__dir__(), *self.__dict__.get("methods", {})]

    def __repr__(self) -> str:
        return f"Model({', '.join(self.methods)})"

    # The callables and their resolved annotations are pickled; the schema is
    # inferred again on load, which checks it against the bundle's manifest.
    def __getstate__(self) -> dict[str, Any]:
        return {"methods": self.methods, "hints": self._hints}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._init(state["methods"], state.get("hints"))


def create_namedtuple(name: str, fields: Iterable[tuple[str, Any]]) -> type[tuple[Any, ...]]:
    """Create a NamedTuple class, as in the Acumos API.

    Example:
        >>> IrisType = create_namedtuple("IrisType", [("value", list[int])])
        >>> IrisType([1, 2])
        IrisType(value=[1, 2])
    """
    cls = typing.NamedTuple(name, list(fields))  # type: ignore[misc]
    # typing sets __module__ to this module; pickling by reference needs the caller's.
    cls.__module__ = sys._getframe(1).f_globals.get("__name__", "__main__")
    return cls

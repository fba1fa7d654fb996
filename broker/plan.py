"""The plan a checked blueprint compiles to, and the router executes.

`SolutionPlan` holds, per solution method, a `MethodPlan`: its steps in a
topological order, where each step's inputs come from (`Source`), whether their
bytes can be forwarded untouched, and the solution's own schema. Frozen records
only; `modelwire.broker.typecheck` builds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from modelwire.broker.blueprint import Blueprint
from modelwire.codegen.compat import Typed
from modelwire.codegen.schema import Method, ModelSchema

__all__ = ["FieldInput", "MethodPlan", "SolutionPlan", "Source", "StepPlan"]


@dataclass(frozen=True)
class Source:
    """Where a value comes from: a step's reply (or the solution's input), then a field path."""

    step: str | None
    path: tuple[str, ...]
    type: Typed

    @property
    def text(self) -> str:
        head = self.step if self.step is not None else "$input"
        return ".".join((head, *self.path))


@dataclass(frozen=True)
class FieldInput:
    """One field of a step's request, filled from a source (`with: {field: ref}`)."""

    field: str
    number: int
    source: Source
    forward: bool  # the source's bytes are wire-identical to the field's type


@dataclass(frozen=True)
class StepPlan:
    name: str
    model: str
    method: Method
    service: str  # full service name of the model
    deps: tuple[str, ...]  # steps this one waits for
    whole: Source | None  # `with: ref`
    forward: bool  # `with: ref` and the bytes can be passed on untouched
    fields: tuple[FieldInput, ...]  # `with: {field: ref, ...}`
    request: Typed
    response: Typed
    timeout: float | None
    retry: int

    @property
    def rpc_path(self) -> str:
        return f"/{self.service}/{self.method.rpc}"


@dataclass(frozen=True)
class MethodPlan:
    name: str
    rpc: str
    steps: dict[str, StepPlan]  # in a topological order
    graph: nx.DiGraph[str]
    request: Typed  # the solution's request (in the solution schema)
    input_fields: dict[str, int] | None  # synthesized input: field -> number; None if copied
    output: Source  # in the models' schemas
    output_forward: bool


@dataclass(frozen=True)
class SolutionPlan:
    blueprint: Blueprint
    schemas: Mapping[str, ModelSchema]
    methods: dict[str, MethodPlan]
    schema: ModelSchema  # the solution's service

    def summary(self) -> list[str]:
        """`advise(AdviseRequest) returns (AdviseResponse)` per method."""
        return [
            f"{m.name}({self.schema.method(m.name).request}) returns "
            f"({self.schema.method(m.name).response})"
            for m in self.methods.values()
        ]

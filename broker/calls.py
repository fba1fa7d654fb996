"""Type-check pass 1, resolve: each step's `call:` names a unary method of a known model.

`resolve_calls()` finds, for every step of a solution method, the model's method
in its schema, and reports unknown models (MW101), unknown methods and streaming
rpcs (MW102). A model whose schema could not be found was reported by the
resolver (`modelwire.broker.resolve`) and is skipped here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelwire.broker.blueprint import Blueprint, SolutionMethod, Step
from modelwire.broker.references import did_you_mean
from modelwire.codegen.compat import Typed
from modelwire.codegen.schema import MessageType, Method, ModelSchema
from modelwire.diagnostics import Diagnostic

__all__ = ["Call", "Calls", "resolve_calls"]


@dataclass(frozen=True)
class Call:
    """A step whose `call:` resolved: the model's schema and the method it calls."""

    step: Step
    schema: ModelSchema
    method: Method

    @property
    def request(self) -> Typed:
        return Typed(self.schema, MessageType(self.method.request))

    @property
    def response(self) -> Typed:
        return Typed(self.schema, MessageType(self.method.response))


@dataclass(frozen=True)
class Calls:
    """What pass 1 found for one solution method."""

    by_step: Mapping[str, Call]  # the steps whose call resolved
    diagnostics: tuple[Diagnostic, ...]


def _find_method(schema: ModelSchema, name: str) -> Method | None:
    for m in schema.methods:
        if name in (m.name, m.rpc):
            return m
    return None


def resolve_calls(
    bp: Blueprint, method: SolutionMethod, schemas: Mapping[str, ModelSchema]
) -> Calls:
    """Resolve the call of every step of `method`."""
    found: dict[str, Call] = {}
    diags: list[Diagnostic] = []
    for step in method.steps.values():
        if step.model not in bp.models:
            if step.model not in bp.unreadable:
                diags.append(
                    Diagnostic(
                        "MW101",
                        f"step {step.name!r} calls unknown model {step.model!r}"
                        f"{did_you_mean(step.model, bp.models)}",
                        step.call_location,
                        (f"models: {', '.join(bp.models) or '(none)'}",),
                    )
                )
            continue
        schema = schemas.get(step.model)
        if schema is None:
            continue  # could not be resolved; reported by the resolver
        m = _find_method(schema, step.method)
        if m is None:
            names = [x.name for x in schema.methods]
            diags.append(
                Diagnostic(
                    "MW102",
                    f"model {step.model!r} has no method {step.method!r}"
                    f"{did_you_mean(step.method, names)}",
                    step.call_location,
                    (f"its methods: {', '.join(names)}",),
                )
            )
            continue
        if m.streaming:
            diags.append(
                Diagnostic(
                    "MW102",
                    f"step {step.name!r} calls {step.model}.{m.name}, a {m.streaming}-streaming "
                    "rpc; steps call unary rpcs only",
                    step.call_location,
                )
            )
            continue
        found[step.name] = Call(step, schema, m)
    return Calls(found, tuple(diags))

"""Type-check a blueprint against its models' schemas, before anything runs.

`check(blueprint, schemas)` runs the passes over each solution method, each a
function of frozen records that returns its findings and diagnostics:

1. resolve (`modelwire.broker.calls`): each step's `call:` to a model's method;
2. graph (`modelwire.broker.dag`): the DAG of steps, its cycles, unused steps;
3. `$input` (`modelwire.broker.input_type`): what the solution's request is;
4. edges (`modelwire.broker.edges`): every reference against what consumes it;
5. compile (`modelwire.broker.compiler`): the `SolutionPlan` the router executes,
   with the solution's own schema; only when passes 1-4 found no problem at all.

Every problem is a compiler-style `Diagnostic`; they are reported together, sorted.
Pure: schemas come in as arguments; no I/O, no network.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelwire.broker.blueprint import Blueprint, SolutionMethod
from modelwire.broker.calls import resolve_calls
from modelwire.broker.compiler import CheckedMethod, compile_solution
from modelwire.broker.dag import build_dag
from modelwire.broker.edges import check_edges
from modelwire.broker.input_type import infer_input
from modelwire.broker.plan import SolutionPlan
from modelwire.codegen.schema import ModelSchema
from modelwire.diagnostics import Diagnostic

__all__ = ["check", "check_method"]


def check_method(
    bp: Blueprint, method: SolutionMethod, schemas: Mapping[str, ModelSchema]
) -> CheckedMethod:
    """Passes 1-4 over one solution method."""
    calls = resolve_calls(bp, method, schemas)
    dag = build_dag(method)
    inputs = infer_input(method, calls)
    edges = check_edges(method, calls, inputs)
    return CheckedMethod(method, calls, dag, inputs, edges)


def check(
    blueprint: Blueprint, schemas: Mapping[str, ModelSchema], *, version: str = "1.0.0"
) -> tuple[SolutionPlan | None, list[Diagnostic]]:
    """Check a blueprint; return the plan (None if any error) and the sorted diagnostics."""
    checked = [check_method(blueprint, m, schemas) for m in blueprint.methods.values()]
    diags = sorted((d for c in checked for d in c.diagnostics), key=Diagnostic.sort_key)
    if diags:
        return None, diags
    ready = [c for c in checked if c.compilable]
    if not ready:
        if not blueprint.methods:
            return None, [Diagnostic("MW002", "the blueprint has no methods", blueprint.location)]
        return None, []  # what the loader could not read, it reported
    return compile_solution(blueprint, schemas, ready, version=version), []

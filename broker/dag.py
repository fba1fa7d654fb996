"""Type-check pass 2, graph: a solution method's steps as a DAG, its cycles and unused steps.

`build_dag()` derives the graph from the references between steps (a step that
reads another's reply depends on it) and reports cycles (MW301), an output that is
not a step (MW303, MW103) and steps the output does not need (MW302). It needs no
schema: only the blueprint's references.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from modelwire.broker.blueprint import SolutionMethod
from modelwire.broker.references import did_you_mean, suggest
from modelwire.diagnostics import Diagnostic

__all__ = ["Dag", "build_dag"]


@dataclass(frozen=True)
class Dag:
    """What pass 2 found for one solution method."""

    graph: nx.DiGraph[str]  # step -> the steps that read its reply
    order: tuple[str, ...]  # the steps in a topological order; () if there is a cycle
    diagnostics: tuple[Diagnostic, ...]


def build_dag(method: SolutionMethod) -> Dag:
    """The graph of `method`'s steps, checked for cycles and steps nothing needs."""
    diags: list[Diagnostic] = []
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(method.steps)
    # what the reachability check assumes: a reference to an unknown step with a close
    # match uses that step, so a typo is reported once (MW103), not also as MW302
    assumed: nx.DiGraph[str] = nx.DiGraph()
    assumed.add_nodes_from(method.steps)
    for step in method.steps.values():
        for r in step.refs():
            if r.step is None:
                continue
            if r.step in method.steps:
                graph.add_edge(r.step, step.name, ref=r.text)
                assumed.add_edge(r.step, step.name)
            else:
                likely = suggest(r.step, method.steps)
                if likely is not None:
                    assumed.add_edge(likely, step.name)
    cyclic = False
    for cycle in sorted(nx.simple_cycles(graph), key=sorted):
        cyclic = True
        first = min(cycle, key=lambda s: method.steps[s].location)
        i = cycle.index(first)
        ring = cycle[i:] + cycle[:i] + [first]
        diags.append(
            Diagnostic(
                "MW301",
                f"steps {' -> '.join(repr(s) for s in ring)} form a cycle",
                method.steps[first].location,
                help="a step can only use the replies of steps that do not depend on it",
            )
        )
    out = method.output
    output_step: str | None = None  # the output's step, or the likely one of a typo
    if out.step is None:
        diags.append(
            Diagnostic(
                "MW303",
                f"the output of method {method.name!r} must be a step, not $input",
                out.location,
            )
        )
    elif out.step in method.unreadable:
        pass
    elif out.step not in method.steps:
        diags.append(
            Diagnostic(
                "MW103",
                f"'output' of method {method.name!r}: unknown step "
                f"{out.step!r}{did_you_mean(out.step, method.steps)}",
                out.location,
            )
        )
        output_step = suggest(out.step, method.steps)
    else:
        output_step = out.step
    if output_step is not None and not cyclic and method.complete:
        needed = nx.ancestors(assumed, output_step) | {output_step}
        for s in method.steps.values():
            if s.name not in needed:
                diags.append(
                    Diagnostic(
                        "MW302",
                        f"step {s.name!r} is not used by the output of method {method.name!r}",
                        s.location,
                        help=f"remove it, or feed its reply into a step that "
                        f"{output_step!r} depends on",
                    )
                )
    order = () if cyclic else tuple(nx.topological_sort(graph))
    return Dag(graph, order, tuple(diags))

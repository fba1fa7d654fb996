"""Type-check pass 5, compile: a checked blueprint becomes the plan the router executes.

`compile_solution()` takes what the earlier passes found (`CheckedMethod`, one per
solution method, each free of problems) and makes

* the solution's schema: one rpc per method, its request a copy of what `$input`
  is (or of the fields steps read from it), its response a copy of the output's
  type, both with the models' field numbers (`modelwire.broker.solution_schema`),
  so bytes pass through the solution's boundary as they are;
* per step, the pieces its request is assembled from (`modelwire.broker.plan.Piece`):
  the field numbers along each path, the message classes that parse and build,
  and whether each edge's bytes are forwarded or transcoded;
* per method, the piece that cuts the solution's reply from the output's reply.

Message classes are made here, once per schema, in descriptor pools that live
with the plan. No I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import networkx as nx

from modelwire.broker.blueprint import Blueprint, SolutionMethod
from modelwire.broker.calls import Call, Calls
from modelwire.broker.dag import Dag
from modelwire.broker.edges import Edges, StepInputs
from modelwire.broker.input_type import InputType
from modelwire.broker.plan import MethodPlan, Piece, SolutionPlan, Source, Splice, StepPlan
from modelwire.broker.solution_schema import SchemaCopier
from modelwire.codegen.compat import Typed
from modelwire.codegen.descriptors import MessageClasses, file_descriptor
from modelwire.codegen.descriptors import message_classes as make_classes
from modelwire.codegen.naming import package_name, rpc_name, service_name
from modelwire.codegen.schema import Field, Message, MessageType, Method, ModelSchema, OptionalType
from modelwire.diagnostics import Diagnostic

__all__ = ["CheckedMethod", "compile_solution"]


@dataclass(frozen=True)
class CheckedMethod:
    """What passes 1-4 found for one solution method."""

    method: SolutionMethod
    calls: Calls
    dag: Dag
    inputs: InputType
    edges: Edges

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        return (
            self.calls.diagnostics
            + self.dag.diagnostics
            + self.inputs.diagnostics
            + self.edges.diagnostics
        )

    @property
    def compilable(self) -> bool:
        """No problem was found, and everything the plan needs is known (a method the
        loader could not read whole is not, even where its own checks found nothing)."""
        return (
            not self.diagnostics
            and self.method.complete
            and self.method.output.step is not None
            and self.edges.output is not None
        )


def compile_solution(
    bp: Blueprint,
    schemas: Mapping[str, ModelSchema],
    methods: Sequence[CheckedMethod],
    *,
    version: str = "1.0.0",
) -> SolutionPlan:
    """The plan of a blueprint whose `methods` all checked (`CheckedMethod.compilable`)."""
    name = bp.name or "solution"
    copier = SchemaCopier()
    contracts = [_contract(c, copier) for c in methods]
    order = {n: i for i, n in enumerate(n for m, _ in contracts for n in (m.request, m.response))}
    schema = ModelSchema(
        name,
        package_name(name, version).replace(".models.", ".solutions."),
        service_name(name),
        tuple(m for m, _ in contracts),
        tuple(
            sorted(copier.messages.values(), key=lambda x: (order.get(x.name, len(order)), x.name))
        ),
        tuple(sorted(copier.enums.values(), key=lambda e: e.name)),
    )
    classes = _Classes(schema)
    plans = {
        c.method.name: _method_plan(c, Typed(schema, MessageType(m.request)), fields, classes)
        for c, (m, fields) in zip(methods, contracts, strict=True)
    }
    return SolutionPlan(bp, schemas, plans, schema)


def _contract(c: CheckedMethod, copier: SchemaCopier) -> tuple[Method, dict[str, int] | None]:
    """The solution's rpc for a method, its messages copied into `copier`; and, when the
    request is made of the `$input` fields steps read, those fields' numbers."""
    method, out, output = c.method, c.method.output, c.edges.output
    assert out.step is not None and output is not None
    rpc = rpc_name(method.name)
    req_name, resp_name = f"{rpc}Request", f"{rpc}Response"
    prefix = "".join(w[:1].upper() + w[1:] for w in out.step.split("_"))
    input_fields: dict[str, int] | None = None
    input_params = c.inputs.params
    typed = c.inputs.typed
    if typed is not None:
        assert isinstance(typed.type, MessageType)
        copier.message(typed.schema, typed.type.name, "", as_name=req_name)
    else:
        input_fields = {}
        fields = []
        for number, (head, field_typed) in enumerate(c.edges.synthesized.items(), start=1):
            fields.append(
                Field(head, number, copier.type(field_typed.schema, field_typed.type, ""))
            )
            input_fields[head] = number
        copier.messages[req_name] = Message(req_name, tuple(fields))
        input_params = tuple(input_fields)
    inner = output.type.item if isinstance(output.type, OptionalType) else output.type
    if isinstance(inner, MessageType):
        copier.message(output.schema, inner.name, prefix, as_name=resp_name)
        # a whole reply keeps its model's convention (a message, or a single `value`)
        returns = c.calls.by_step[out.step].method.returns if not out.path else "message"
    else:
        value = copier.type(output.schema, output.type, prefix)
        copier.messages[resp_name] = Message(resp_name, (Field("value", 1, value),))
        returns = "value"
    # `params` and `returns` as for a model's method, so that `connect()` takes and
    # returns the same plain values as the models' own methods
    return Method(method.name, rpc, req_name, resp_name, input_params, returns), input_fields


class _Classes:
    """Message classes, made once per schema: the solution's, and each model's."""

    def __init__(self, solution: ModelSchema) -> None:
        self.solution = make_classes(file_descriptor(solution))
        self._models: dict[str, MessageClasses] = {}

    def of(self, call: Call) -> MessageClasses:
        got = self._models.get(call.step.model)
        if got is None:
            got = self._models[call.step.model] = make_classes(file_descriptor(call.schema))
        return got


def _numbers(root: Typed, names: tuple[str, ...]) -> tuple[int, ...]:
    """A field path below the message `root`, as field numbers."""
    out = []
    t = root.type
    for name in names:
        inner = t.item if isinstance(t, OptionalType) else t
        assert isinstance(inner, MessageType)
        f = next(f for f in root.schema.message(inner.name).fields if f.name == name)
        out.append(f.number)
        t = f.type
    return tuple(out)


def _method_plan(
    c: CheckedMethod, request: Typed, input_fields: dict[str, int] | None, classes: _Classes
) -> MethodPlan:
    method, calls = c.method, c.calls.by_step
    assert isinstance(request.type, MessageType)
    request_class = classes.solution.get(request.type.name)

    def locate(source: Source) -> Piece:
        """A piece reading `source`, to be told what to do with it."""
        if source.step is None:
            root, parser = request, request_class
        else:
            call = calls[source.step]
            root, parser = call.response, classes.of(call).get(call.method.response)
        return Piece(Splice.PASS, source.step, _numbers(root, source.path), source.path, parser)

    steps: dict[str, StepPlan] = {}
    for name in c.dag.order:
        inputs = c.edges.steps.get(name)
        if inputs is None:
            continue
        call = calls[name]
        step = call.step
        deps = tuple(
            sorted({r.step for r in step.refs() if r.step is not None and r.step in method.steps})
        )
        steps[name] = StepPlan(
            step.name,
            step.model,
            call.method,
            f"{call.schema.package}.{call.schema.service}",
            deps,
            inputs.whole,
            inputs.forward,
            inputs.fields,
            call.request,
            call.response,
            step.timeout,
            step.retry,
            _pieces(inputs, locate),
            classes.of(call).get(call.method.request),
        )
    out, output = method.output, c.edges.output
    assert out.step is not None and output is not None
    source = Source(out.step, out.path, output)
    reply = locate(source)
    inner = output.type.item if isinstance(output.type, OptionalType) else output.type
    if reply.numbers:
        # a message field's records merge into one message; anything else is field 1
        if isinstance(inner, MessageType):
            reply = replace(reply, how=Splice.MERGE)
        else:
            reply = replace(reply, how=Splice.RETAG, number=1, field="value")
    # a method whose steps form one path runs them inline, one after another
    chain = all(len(gen) == 1 for gen in nx.topological_generations(c.dag.graph)) and all(
        len(s.deps) <= 1 for s in steps.values()
    )
    rpc = rpc_name(method.name)
    return MethodPlan(
        method.name, rpc, steps, c.dag.graph, request, input_fields, source, reply, chain
    )


def _pieces(inputs: StepInputs, locate: Callable[[Source], Piece]) -> tuple[Piece, ...]:
    """The pieces a step's request is assembled from."""
    if inputs.whole is not None:
        piece = locate(inputs.whole)
        if not inputs.forward:
            how = Splice.TRANSCODE
        else:
            how = Splice.MERGE if piece.numbers else Splice.PASS
        return (replace(piece, how=how),)
    pieces = []
    for fi in inputs.fields:
        piece = locate(fi.source)
        if not fi.forward:
            how = Splice.TRANSCODE_FIELD
        else:
            how = Splice.RETAG if piece.numbers else Splice.WRAP
        pieces.append(replace(piece, how=how, number=fi.number, field=fi.field))
    return tuple(pieces)

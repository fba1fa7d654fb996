"""Type-check a blueprint against its models' schemas, before anything runs.

`check(blueprint, schemas)` resolves every `call:` to a model method, every
reference to a producer type, checks each against what its consumer expects
(`modelwire.codegen.compat.assignable`), builds each method's DAG, and reports
every problem as a compiler-style `Diagnostic`. On success it returns the
`SolutionPlan` the router executes: per step, where each input comes from and
whether its bytes can be forwarded untouched; and the solution's own schema
(one rpc per blueprint method), whose messages are copies of the models'
messages with the same field numbers, so client bytes pass through as they are.

The plan's records are in `modelwire.broker.plan`, the reference checks in
`modelwire.broker.references`, the copying of types into the solution's schema
in `modelwire.broker.solution_schema`.

Pure: schemas come in as arguments; no I/O, no network.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from modelwire.broker.blueprint import Blueprint, Ref, SolutionMethod, Step
from modelwire.broker.plan import FieldInput, MethodPlan, SolutionPlan, Source, StepPlan
from modelwire.broker.references import ReferenceChecker, did_you_mean, suggest
from modelwire.broker.solution_schema import SchemaCopier
from modelwire.codegen.compat import Typed, assignable, render_type
from modelwire.codegen.compat import wire_identical as _wire_identical
from modelwire.codegen.schema import (
    Field,
    Message,
    MessageType,
    Method,
    ModelSchema,
    OptionalType,
    package_name,
    rpc_name,
    service_name,
)
from modelwire.diagnostics import Diagnostic

__all__ = ["check"]


def _find_method(schema: ModelSchema, name: str) -> Method | None:
    for m in schema.methods:
        if name in (m.name, m.rpc):
            return m
    return None


class _Checker(ReferenceChecker):
    """Checks each method of a blueprint and builds its plan."""

    def method(
        self, method: SolutionMethod, copier: SchemaCopier, solution_name: str
    ) -> tuple[MethodPlan, Method] | None:
        errors_before = len(self.diags)
        resolved: dict[str, tuple[Step, ModelSchema, Method]] = {}
        # what the loader could not read, it reported; checks that would only repeat it, or
        # be wrong for want of it, are skipped
        incomplete = bool(method.unreadable) or any(not s.complete for s in method.steps.values())
        for step in method.steps.values():
            node = self.bp.models.get(step.model)
            if node is None:
                if step.model in self.bp.unreadable:
                    continue
                self.error(
                    "MW101",
                    f"step {step.name!r} calls unknown model {step.model!r}"
                    f"{did_you_mean(step.model, self.bp.models)}",
                    step.call_location,
                    notes=[f"models: {', '.join(self.bp.models) or '(none)'}"],
                )
                continue
            schema = self.schemas.get(step.model)
            if schema is None:
                continue  # could not be resolved; reported by the resolver
            m = _find_method(schema, step.method)
            if m is None:
                names = [x.name for x in schema.methods]
                self.error(
                    "MW102",
                    f"model {step.model!r} has no method {step.method!r}"
                    f"{did_you_mean(step.method, names)}",
                    step.call_location,
                    notes=[f"its methods: {', '.join(names)}"],
                )
                continue
            if m.streaming:
                self.error(
                    "MW102",
                    f"step {step.name!r} calls {step.model}.{m.name}, a {m.streaming}-streaming "
                    "rpc; steps call unary rpcs only",
                    step.call_location,
                )
                continue
            resolved[step.name] = (step, schema, m)

        # ---- graph, cycles, reachability
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
            order = cycle[i:] + cycle[:i] + [first]
            self.error(
                "MW301",
                f"steps {' -> '.join(repr(s) for s in order)} form a cycle",
                method.steps[first].location,
                help="a step can only use the replies of steps that do not depend on it",
            )
        out = method.output
        output_step: str | None = None  # the output's step, or the likely one of a typo
        if out.step is None:
            self.error(
                "MW303",
                f"the output of method {method.name!r} must be a step, not $input",
                out.location,
            )
        elif out.step in method.unreadable:
            pass
        elif out.step not in method.steps:
            self.error(
                "MW103",
                f"'output' of method {method.name!r}: unknown step "
                f"{out.step!r}{did_you_mean(out.step, method.steps)}",
                out.location,
            )
            output_step = suggest(out.step, method.steps)
        else:
            output_step = out.step
        if output_step is not None and not cyclic and not incomplete:
            needed = nx.ancestors(assumed, output_step) | {output_step}
            for s in method.steps.values():
                if s.name not in needed:
                    self.error(
                        "MW302",
                        f"step {s.name!r} is not used by the output of method {method.name!r}",
                        s.location,
                        help=f"remove it, or feed its reply into a step that "
                        f"{output_step!r} depends on",
                    )

        # ---- the input type: the request of a step that takes $input whole, one that every
        # other such step accepts (whichever is listed first, if several do)
        takers = [
            step
            for step in method.steps.values()
            if isinstance(step.inputs, Ref) and step.inputs.is_input and not step.inputs.path
        ]
        # a taker whose call did not resolve leaves $input's type unknown: skip its checks
        # (an incomplete step may have been one: its `with:` could not be read)
        input_unknown = incomplete or any(t.name not in resolved for t in takers)
        needs = {
            t.name: Typed(resolved[t.name][1], MessageType(resolved[t.name][2].request))
            for t in takers
            if t.name in resolved
        }
        input_typed: Typed | None = None
        input_params: tuple[str, ...] | None = None  # the Python parameters it stands for
        if needs:
            owner = next(
                (
                    o
                    for o in needs
                    if all(not assignable(needs[o], needs[t]) for t in needs if t != o)
                ),
                next(iter(needs)),
            )
            input_typed = needs[owner]
            input_params = resolved[owner][2].params
            o_step = method.steps[owner]
            o_method = resolved[owner][2]
            for t, need in needs.items():
                ms = assignable(input_typed, need) if t != owner else []
                if not ms:
                    continue
                step = method.steps[t]
                assert isinstance(step.inputs, Ref)
                self.error(
                    "MW205",
                    f"$input feeds steps {owner!r} and {t!r}, which need different types",
                    step.inputs.location,
                    notes=[
                        f"{owner!r} ({o_step.model}.{o_step.method}) takes message "
                        f"{o_method.request}",
                        f"{t!r} ({step.model}.{step.method}) takes message "
                        f"{resolved[t][2].request}",
                    ]
                    + [
                        f"at {x.path or 'the message'!r}: {x.producer or 'missing'} vs {x.consumer}"
                        for x in ms[:5]
                    ],
                    help="give each step a compatible request, or map fields with "
                    "'with: {field: $input.field}'",
                )
        synthesized: dict[str, tuple[Typed, Ref]] = {}

        # ---- each step's inputs
        def source_of(ref: Ref, what: str, expected: Typed | None) -> Typed | None:
            if ref.step is not None:
                return self.step_reply(method, resolved, ref, what)
            if input_typed is not None:
                return self.walk_path(input_typed, ref.path, ref, what)
            if input_unknown:
                return None
            if len(ref.path) != 1 or expected is None:
                self.error(
                    "MW104",
                    f"{what}: {ref.text!r} needs a step that takes $input "
                    "whole, to define what $input is",
                    ref.location,
                )
                return None
            head = ref.path[0]
            prev = synthesized.get(head)
            if prev is None:
                synthesized[head] = (expected, ref)
                return expected
            ms = assignable(prev[0], expected)
            if ms:
                self.error(
                    "MW205",
                    f"{what}: $input.{head} is needed as "
                    f"{render_type(expected.type)} here but as "
                    f"{render_type(prev[0].type)} at line "
                    f"{prev[1].location.line}",
                    ref.location,
                )
                return None
            return prev[0]

        def producer_desc(ref: Ref) -> str:
            if ref.step is None:
                return "$input"
            p = method.steps[ref.step]
            return f"{p.name!r} ({p.model}.{p.method})"

        step_plans: dict[str, StepPlan] = {}
        for step in method.steps.values():
            if step.name not in resolved or not step.complete:
                # its request type is unknown, but what it refers to must still exist
                refs = (
                    [(f"'with' of step {step.name!r}", step.inputs)]
                    if isinstance(step.inputs, Ref)
                    else [
                        (f"'with.{fname}' of step {step.name!r}", r)
                        for fname, r in step.inputs.items()
                    ]
                )
                for what, r in refs:
                    if r.step is not None or (r.path and input_typed is not None):
                        source_of(r, what, None)
                continue
            _, schema, m = resolved[step.name]
            request = Typed(schema, MessageType(m.request))
            cdesc = f"{step.name!r} ({step.model}.{m.name})"
            whole: Source | None = None
            forward = False
            fields: list[FieldInput] = []
            if isinstance(step.inputs, Ref):
                r = step.inputs
                what = f"'with' of step {step.name!r}"
                if r.is_input and not r.path:
                    if input_typed is not None:
                        whole = Source(None, (), input_typed)
                        forward = _wire_identical(input_typed, request)
                else:
                    src = source_of(r, what, request)
                    if src is not None:
                        ms = assignable(src, request)
                        self.mismatch(ms, r, producer_desc(r), step.name, cdesc)
                        whole = Source(r.step, r.path, src)
                        forward = not ms and _wire_identical(src, request)
            else:
                req_msg = schema.message(m.request)
                by_name = {f.name: f for f in req_msg.fields}
                for fname, r in step.inputs.items():
                    what = f"'with.{fname}' of step {step.name!r}"
                    cf = by_name.get(fname)
                    if cf is None:
                        self.error(
                            "MW104",
                            f"{what}: {m.request} of {step.model}.{m.name} has "
                            f"no field {fname!r}"
                            f"{did_you_mean(fname, by_name)}",
                            r.location,
                            notes=[f"its fields: {', '.join(by_name) or '(none)'}"],
                        )
                        continue
                    expected = Typed(schema, cf.type)
                    src = source_of(r, what, expected)
                    if src is None:
                        continue
                    ms = assignable(src, expected)
                    self.mismatch(ms, r, producer_desc(r), step.name, cdesc, fname)
                    fields.append(
                        FieldInput(
                            fname,
                            cf.number,
                            Source(r.step, r.path, src),
                            not ms and _wire_identical(src, expected),
                        )
                    )
                for cf in req_msg.fields:
                    if cf.name not in step.inputs and not isinstance(cf.type, OptionalType):
                        self.error(
                            "MW202",
                            f"step {step.name!r}: required field {cf.name!r} "
                            f"of {m.request} is not given in 'with'",
                            step.call_location,
                            notes=[f"{cdesc} expects {cf.name!r}: {render_type(cf.type)}"],
                            help=f"add '{cf.name}: <step or $input>.<field>' to 'with'",
                        )
            deps = tuple(
                sorted(
                    {r.step for r in step.refs() if r.step is not None and r.step in method.steps}
                )
            )
            step_plans[step.name] = StepPlan(
                step.name,
                step.model,
                m,
                f"{schema.package}.{schema.service}",
                deps,
                whole,
                forward,
                tuple(fields),
                request,
                Typed(schema, MessageType(m.response)),
                step.timeout,
                step.retry,
            )

        output: Typed | None = None
        if out.step is not None and out.step in method.steps:
            output = self.step_reply(method, resolved, out, f"'output' of method {method.name!r}")
        if len(self.diags) > errors_before or output is None or out.step is None or incomplete:
            return None

        # ---- the solution's request and response messages
        rpc = rpc_name(method.name)
        req_name, resp_name = f"{rpc}Request", f"{rpc}Response"
        prefix = "".join(w[:1].upper() + w[1:] for w in out.step.split("_"))
        input_fields: dict[str, int] | None = None
        if input_typed is not None:
            assert isinstance(input_typed.type, MessageType)
            copier.message(input_typed.schema, input_typed.type.name, "", as_name=req_name)
        else:
            input_fields = {}
            fields_out = []
            for number, (head, (typed, _)) in enumerate(synthesized.items(), start=1):
                fields_out.append(Field(head, number, copier.type(typed.schema, typed.type, "")))
                input_fields[head] = number
            copier.messages[req_name] = Message(req_name, tuple(fields_out))
            input_params = tuple(input_fields)
        inner = output.type.item if isinstance(output.type, OptionalType) else output.type
        if isinstance(inner, MessageType):
            copier.message(output.schema, inner.name, prefix, as_name=resp_name)
            # a whole reply keeps its model's convention (a message, or a single `value`)
            returns = resolved[out.step][2].returns if not out.path else "message"
        else:
            copier.messages[resp_name] = Message(
                resp_name, (Field("value", 1, copier.type(output.schema, output.type, prefix)),)
            )
            returns = "value"
        # the response is a copy of the output's type with the same field numbers (a message
        # as it is, anything else as field 1 'value'), so its bytes always pass on untouched
        output_forward = True
        order = list(nx.topological_sort(graph))
        plan = MethodPlan(
            method.name,
            rpc,
            {s: step_plans[s] for s in order if s in step_plans},
            graph,
            Typed(ModelSchema(solution_name, "", "", (), ()), MessageType(req_name)),
            input_fields,
            Source(out.step, out.path, output),
            output_forward,
        )
        # `params` and `returns` as for a model's method, so that `connect()` takes and
        # returns the same plain values as the models' own methods
        return plan, Method(method.name, rpc, req_name, resp_name, input_params, returns)


def check(
    blueprint: Blueprint, schemas: Mapping[str, ModelSchema], *, version: str = "1.0.0"
) -> tuple[SolutionPlan | None, list[Diagnostic]]:
    """Check a blueprint; return the plan (None if any error) and the sorted diagnostics."""
    checker = _Checker(blueprint, schemas)
    copier = SchemaCopier()
    plans: dict[str, MethodPlan] = {}
    methods: list[Method] = []
    name = blueprint.name or "solution"
    for m in blueprint.methods.values():
        got = checker.method(m, copier, name)
        if got is None:
            continue
        plan, solution_method = got
        plans[m.name] = plan
        methods.append(solution_method)
    diags = sorted(checker.diags, key=Diagnostic.sort_key)
    if diags or not plans:
        if not diags and not blueprint.methods:
            diags = [Diagnostic("MW002", "the blueprint has no methods", blueprint.location)]
        return None, diags
    order = {n: i for i, n in enumerate(n for m in methods for n in (m.request, m.response))}
    schema = ModelSchema(
        name,
        package_name(name, version).replace(".models.", ".solutions."),
        service_name(name),
        tuple(methods),
        tuple(
            sorted(copier.messages.values(), key=lambda x: (order.get(x.name, len(order)), x.name))
        ),
        tuple(sorted(copier.enums.values(), key=lambda e: e.name)),
    )
    final = {
        k: MethodPlan(
            p.name,
            p.rpc,
            p.steps,
            p.graph,
            Typed(schema, p.request.type),
            p.input_fields,
            p.output,
            p.output_forward,
        )
        for k, p in plans.items()
    }
    return SolutionPlan(blueprint, schemas, final, schema), []

"""Type-check a blueprint against its models' schemas, before anything runs.

`check(blueprint, schemas)` resolves every `call:` to a model method, every
reference to a producer type, checks each against what its consumer expects
(`modelwire.codegen.compat.assignable`), builds each method's DAG, and reports
every problem as a compiler-style `Diagnostic`. On success it returns the
`SolutionPlan` the router executes: per step, where each input comes from and
whether its bytes can be forwarded untouched; and the solution's own schema
(one rpc per blueprint method), whose messages are copies of the models'
messages with the same field numbers, so client bytes pass through as they are.

Pure: schemas come in as arguments; no I/O, no network.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import networkx as nx

from modelwire.broker.blueprint import Blueprint, Ref, SolutionMethod, Step
from modelwire.codegen.compat import Mismatch, Typed, assignable, field_type, render_type
from modelwire.codegen.compat import wire_identical as _wire_identical
from modelwire.codegen.schema import (
    EnumSchema,
    EnumType,
    Field,
    ListType,
    MapType,
    Message,
    MessageType,
    Method,
    ModelSchema,
    OptionalType,
    TypeNode,
    package_name,
    rpc_name,
    service_name,
)
from modelwire.diagnostics import Diagnostic, Location

__all__ = ["FieldInput", "MethodPlan", "SolutionPlan", "Source", "StepPlan", "check"]


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


def _suggest(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    s = _suggest(name, candidates)
    return f"; did you mean {s!r}?" if s else ""


def _join(head: str, tail: str) -> str:
    """A field path and a path below it: `boxes` + `[].x` -> `boxes[].x`."""
    if not head or not tail:
        return head or tail
    return head + tail if tail.startswith(("[", "{")) else f"{head}.{tail}"


def _find_method(schema: ModelSchema, name: str) -> Method | None:
    for m in schema.methods:
        if name in (m.name, m.rpc):
            return m
    return None


# ---------------------------------------------------------------- copying types


class _Copier:
    """Copies messages and enums from model schemas into the solution's schema."""

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}
        self.enums: dict[str, EnumSchema] = {}
        self._names: dict[tuple[int, str], str] = {}

    def _claim(
        self,
        schema: ModelSchema,
        name: str,
        prefix: str,
        definition: object,
        table: Mapping[str, object],
    ) -> tuple[str, bool]:
        key = (id(schema), name)
        if key in self._names:
            return self._names[key], False
        candidate = name
        n = 1
        while candidate in table or candidate in self.messages or candidate in self.enums:
            existing = table.get(candidate)
            if existing == definition:
                self._names[key] = candidate
                return candidate, False
            candidate = f"{prefix}{name}" if n == 1 else f"{prefix}{name}{n}"
            n += 1
        self._names[key] = candidate
        return candidate, True

    def type(self, schema: ModelSchema, t: TypeNode, prefix: str) -> TypeNode:
        match t:
            case OptionalType(item):
                return OptionalType(self.type(schema, item, prefix))
            case ListType(item):
                return ListType(self.type(schema, item, prefix))
            case MapType(key, value):
                return MapType(key, self.type(schema, value, prefix))
            case EnumType(name):
                src = schema.enum(name)
                new, fresh = self._claim(schema, name, prefix, src, self.enums)
                if fresh:
                    self.enums[new] = EnumSchema(new, src.values, src.source)
                return EnumType(new)
            case MessageType(name):
                return MessageType(self.message(schema, name, prefix))
        return t

    def message(
        self, schema: ModelSchema, name: str, prefix: str, as_name: str | None = None
    ) -> str:
        src = schema.message(name)
        if as_name is not None:
            new, fresh = as_name, as_name not in self.messages
        else:
            new, fresh = self._claim(schema, name, prefix, None, self.messages)
        if fresh:
            self.messages[new] = Message(new, (), src.source, src.doc)  # placeholder for cycles
            fields = tuple(
                Field(f.name, f.number, self.type(schema, f.type, prefix)) for f in src.fields
            )
            self.messages[new] = Message(new, fields, src.source, src.doc)
        return new


# ---------------------------------------------------------------- the checker


@dataclass
class _Checker:
    bp: Blueprint
    schemas: Mapping[str, ModelSchema]
    diags: list[Diagnostic] = field(default_factory=list)

    def error(
        self,
        code: str,
        message: str,
        loc: Location | None,
        notes: Iterable[str] = (),
        help: str | None = None,
    ) -> None:
        self.diags.append(Diagnostic(code, message, loc, tuple(notes), help))

    # -------------------------------------------------- references

    def walk_path(self, start: Typed, path: tuple[str, ...], ref: Ref, what: str) -> Typed | None:
        t = start
        for i, name in enumerate(path):
            inner = t.type.item if isinstance(t.type, OptionalType) else t.type
            if not isinstance(inner, MessageType):
                done = ".".join((ref.text.split(".")[0], *path[:i]))
                self.error(
                    "MW104",
                    f"{what}: {done!r} is {render_type(t.type)}, which has no field {name!r}",
                    ref.location,
                    help="only message fields have fields; lists cannot be indexed in a reference",
                )
                return None
            ft = field_type(t.schema, inner, name)
            if ft is None:
                names = [f.name for f in t.schema.message(inner.name).fields]
                self.error(
                    "MW104",
                    f"{what}: message {inner.name} has no field {name!r}"
                    f"{_did_you_mean(name, names)}",
                    ref.location,
                    notes=[f"its fields: {', '.join(names) or '(none)'}"],
                )
                return None
            t = Typed(t.schema, ft)
        return t

    def step_reply(
        self,
        method: SolutionMethod,
        plans: Mapping[str, tuple[Step, ModelSchema, Method]],
        ref: Ref,
        what: str,
    ) -> Typed | None:
        assert ref.step is not None
        if ref.step not in method.steps:
            self.error(
                "MW103",
                f"{what}: unknown step {ref.step!r}{_did_you_mean(ref.step, method.steps)}",
                ref.location,
            )
            return None
        resolved = plans.get(ref.step)
        if resolved is None:
            return None  # its call did not resolve; already reported
        _, schema, m = resolved
        return self.walk_path(Typed(schema, MessageType(m.response)), ref.path, ref, what)

    def mismatch(
        self,
        ms: list[Mismatch],
        ref: Ref,
        pdesc: str,
        consumer: str,
        cdesc: str,
        field: str | None = None,
    ) -> None:
        """Report each way the value at `ref` does not fit field `field` of the step
        `consumer` (its whole request when `field` is None)."""
        target = f"{consumer}.{field}" if field else consumer
        for mm in ms:
            at = f" at {mm.path!r}" if mm.path else ""
            ppath = _join(".".join(ref.path), mm.path)
            cpath = _join(field or "", mm.path)
            if mm.code == "MW202":
                self.error(
                    "MW202",
                    f"{ref.text!r} -> {target!r}: required field {cpath!r} is missing",
                    ref.location,
                    notes=[
                        f"{pdesc} produces no {ppath!r}" + (f" ({mm.detail})" if mm.detail else ""),
                        f"{cdesc} expects {cpath!r}: {mm.consumer}",
                    ],
                    help="map the field with 'with: {field: step.path}', "
                    "or use a model whose field is optional",
                )
                continue
            kind = {
                "MW201": "incompatible types",
                "MW203": "singular, repeated and map fields do not mix",
                "MW204": "tensor dtypes differ",
            }[mm.code]
            self.error(
                mm.code,
                f"{ref.text!r} -> {target!r}: {kind}{at}",
                ref.location,
                notes=[
                    f"{pdesc} produces " + (f"{ppath!r}: " if ppath else "") + mm.producer,
                    f"{cdesc} expects " + (f"{cpath!r}: " if cpath else "") + mm.consumer,
                ]
                + ([mm.detail] if mm.detail and mm.code == "MW201" else []),
            )

    # -------------------------------------------------- one method

    def method(
        self, method: SolutionMethod, copier: _Copier, solution_name: str
    ) -> tuple[MethodPlan, Method] | None:
        errors_before = len(self.diags)
        resolved: dict[str, tuple[Step, ModelSchema, Method]] = {}
        for step in method.steps.values():
            node = self.bp.models.get(step.model)
            if node is None:
                self.error(
                    "MW101",
                    f"step {step.name!r} calls unknown model {step.model!r}"
                    f"{_did_you_mean(step.model, self.bp.models)}",
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
                    f"{_did_you_mean(step.method, names)}",
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
                    likely = _suggest(r.step, method.steps)
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
        elif out.step not in method.steps:
            self.error(
                "MW103",
                f"'output' of method {method.name!r}: unknown step "
                f"{out.step!r}{_did_you_mean(out.step, method.steps)}",
                out.location,
            )
            output_step = _suggest(out.step, method.steps)
        else:
            output_step = out.step
        if output_step is not None and not cyclic:
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
        input_unknown = any(t.name not in resolved for t in takers)
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
            if step.name not in resolved:
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
                            f"{_did_you_mean(fname, by_name)}",
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
        if len(self.diags) > errors_before or output is None or out.step is None:
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
    copier = _Copier()
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

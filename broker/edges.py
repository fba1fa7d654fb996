"""Type-check pass 4, edges: every reference against the field that consumes it.

For each step whose request type is known, `check_edges()` resolves what each
reference in its `with:` names (a step's reply or `$input`, then a field path),
checks it against what the step expects (`modelwire.codegen.compat.assignable`),
and decides whether its bytes can be forwarded as they are (`wire_identical`).
It reports unknown steps and fields (MW103, MW104), values that do not fit
(MW201-MW204), fields of a fan-in left out that are not optional (MW202), and
`$input` fields needed as two different types (MW205). Where no step takes
`$input` whole, the fields read from it make up the solution's request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelwire.broker.blueprint import Ref, SolutionMethod, Step
from modelwire.broker.calls import Call, Calls
from modelwire.broker.input_type import InputType
from modelwire.broker.plan import FieldInput, Source
from modelwire.broker.references import ReferenceChecker, did_you_mean
from modelwire.codegen.compat import Typed, assignable, render_type, wire_identical
from modelwire.codegen.schema import OptionalType
from modelwire.diagnostics import Diagnostic

__all__ = ["Edges", "StepInputs", "check_edges"]


@dataclass(frozen=True)
class StepInputs:
    """A step's checked inputs: `with: ref` (`whole`) or `with: {field: ref, ...}`."""

    whole: Source | None
    forward: bool  # `whole`'s bytes can be passed on untouched
    fields: tuple[FieldInput, ...]


@dataclass(frozen=True)
class Edges:
    """What pass 4 found for one solution method."""

    steps: Mapping[str, StepInputs]  # every step whose call resolved and was read whole
    # the fields of $input read by steps, in the order first read, when no step takes it
    # whole: the solution's request is made of them
    synthesized: Mapping[str, Typed]
    output: Typed | None  # the type of the method's output; None if it is not known
    diagnostics: tuple[Diagnostic, ...]


class _Pass(ReferenceChecker):
    """The edges of one solution method, checked in the order of its steps."""

    def __init__(self, method: SolutionMethod, calls: Mapping[str, Call], inputs: InputType):
        super().__init__()
        self.method = method
        self.calls = calls
        self.inputs = inputs
        self.synthesized: dict[str, tuple[Typed, Ref]] = {}

    def step_reply(self, ref: Ref, what: str) -> Typed | None:
        method = self.method
        assert ref.step is not None
        if ref.step in method.unreadable:
            return None  # the loader reported that step
        if ref.step not in method.steps:
            self.error(
                "MW103",
                f"{what}: unknown step {ref.step!r}{did_you_mean(ref.step, method.steps)}",
                ref.location,
            )
            return None
        call = self.calls.get(ref.step)
        if call is None:
            return None  # its call did not resolve; already reported
        return self.walk_path(call.response, ref.path, ref, what)

    def source_of(self, ref: Ref, what: str, expected: Typed | None) -> Typed | None:
        """The type `ref` names; `expected` is what a `$input` field is to be, when
        `$input` is made of the fields read from it."""
        if ref.step is not None:
            return self.step_reply(ref, what)
        if self.inputs.typed is not None:
            return self.walk_path(self.inputs.typed, ref.path, ref, what)
        if self.inputs.unknown:
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
        prev = self.synthesized.get(head)
        if prev is None:
            self.synthesized[head] = (expected, ref)
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

    def producer(self, ref: Ref) -> str:
        if ref.step is None:
            return "$input"
        p = self.method.steps[ref.step]
        return f"{p.name!r} ({p.model}.{p.method})"

    def references_only(self, step: Step) -> None:
        """A step whose request type is unknown: what it refers to must still exist."""
        refs = (
            [(f"'with' of step {step.name!r}", step.inputs)]
            if isinstance(step.inputs, Ref)
            else [(f"'with.{fname}' of step {step.name!r}", r) for fname, r in step.inputs.items()]
        )
        for what, r in refs:
            if r.step is not None or (r.path and self.inputs.typed is not None):
                self.source_of(r, what, None)

    def whole(self, call: Call, r: Ref) -> StepInputs:
        """`with: ref`: the value at `ref` is the step's whole request."""
        step, request = call.step, call.request
        if r.is_input and not r.path:
            if self.inputs.typed is None:
                return StepInputs(None, False, ())
            typed = self.inputs.typed
            return StepInputs(Source(None, (), typed), wire_identical(typed, request), ())
        src = self.source_of(r, f"'with' of step {step.name!r}", request)
        if src is None:
            return StepInputs(None, False, ())
        ms = assignable(src, request)
        cdesc = f"{step.name!r} ({step.model}.{call.method.name})"
        self.mismatch(ms, r, self.producer(r), step.name, cdesc)
        return StepInputs(Source(r.step, r.path, src), not ms and wire_identical(src, request), ())

    def fan_in(self, call: Call, inputs: dict[str, Ref]) -> StepInputs:
        """`with: {field: ref, ...}`: each listed field of the request from its reference."""
        step, m = call.step, call.method
        cdesc = f"{step.name!r} ({step.model}.{m.name})"
        req_msg = call.schema.message(m.request)
        by_name = {f.name: f for f in req_msg.fields}
        fields: list[FieldInput] = []
        for fname, r in inputs.items():
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
            expected = Typed(call.schema, cf.type)
            src = self.source_of(r, what, expected)
            if src is None:
                continue
            ms = assignable(src, expected)
            self.mismatch(ms, r, self.producer(r), step.name, cdesc, fname)
            forward = not ms and wire_identical(src, expected)
            fields.append(FieldInput(fname, cf.number, Source(r.step, r.path, src), forward))
        for cf in req_msg.fields:
            if cf.name not in inputs and not isinstance(cf.type, OptionalType):
                self.error(
                    "MW202",
                    f"step {step.name!r}: required field {cf.name!r} "
                    f"of {m.request} is not given in 'with'",
                    step.call_location,
                    notes=[f"{cdesc} expects {cf.name!r}: {render_type(cf.type)}"],
                    help=f"add '{cf.name}: <step or $input>.<field>' to 'with'",
                )
        return StepInputs(None, False, tuple(fields))


def check_edges(method: SolutionMethod, calls: Calls, inputs: InputType) -> Edges:
    """Check every reference of `method`, step by step, then its output."""
    checker = _Pass(method, calls.by_step, inputs)
    steps: dict[str, StepInputs] = {}
    for step in method.steps.values():
        call = calls.by_step.get(step.name)
        if call is None or not step.complete:
            checker.references_only(step)
        elif isinstance(step.inputs, Ref):
            steps[step.name] = checker.whole(call, step.inputs)
        else:
            steps[step.name] = checker.fan_in(call, step.inputs)
    out = method.output
    output = None
    if out.step is not None and out.step in method.steps:
        output = checker.step_reply(out, f"'output' of method {method.name!r}")
    synthesized = {head: typed for head, (typed, _) in checker.synthesized.items()}
    return Edges(steps, synthesized, output, tuple(checker.diags))

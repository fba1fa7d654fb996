"""Type-check pass 3, `$input`: the type of a solution method's request, where steps say it.

A step that takes `$input` whole (`with: $input`) says what the solution's request
is: its own request. When several do, `$input` is the request of one that every
other accepts (whichever is listed first, if several do), and a step that would
need another type is reported (MW205). When no step takes it whole, `$input` is
made of the fields steps read from it, and the edges pass (`modelwire.broker.edges`)
collects them.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelwire.broker.blueprint import Ref, SolutionMethod
from modelwire.broker.calls import Calls
from modelwire.codegen.compat import Typed, assignable
from modelwire.diagnostics import Diagnostic

__all__ = ["InputType", "infer_input"]


@dataclass(frozen=True)
class InputType:
    """What pass 3 found for one solution method."""

    typed: Typed | None  # the request of a step that takes $input whole; None if none does
    params: tuple[str, ...] | None  # the Python parameters it stands for (its method's)
    # a step that takes $input whole did not resolve (or may have: the loader could not
    # read some step): what $input is stays unknown, and references to it are not checked
    unknown: bool
    diagnostics: tuple[Diagnostic, ...]


def infer_input(method: SolutionMethod, calls: Calls) -> InputType:
    """The type of `$input` in `method`, from the steps that take it whole."""
    resolved = calls.by_step
    takers = [
        step
        for step in method.steps.values()
        if isinstance(step.inputs, Ref) and step.inputs.is_input and not step.inputs.path
    ]
    unknown = not method.complete or any(t.name not in resolved for t in takers)
    needs = {t.name: resolved[t.name].request for t in takers if t.name in resolved}
    if not needs:
        return InputType(None, None, unknown, ())
    owner = next(
        (o for o in needs if all(not assignable(needs[o], needs[t]) for t in needs if t != o)),
        next(iter(needs)),
    )
    typed = needs[owner]
    o_step, o_method = method.steps[owner], resolved[owner].method
    diags = []
    for t, need in needs.items():
        ms = assignable(typed, need) if t != owner else []
        if not ms:
            continue
        step = method.steps[t]
        assert isinstance(step.inputs, Ref)
        diags.append(
            Diagnostic(
                "MW205",
                f"$input feeds steps {owner!r} and {t!r}, which need different types",
                step.inputs.location,
                (
                    f"{owner!r} ({o_step.model}.{o_step.method}) takes message {o_method.request}",
                    f"{t!r} ({step.model}.{step.method}) takes message "
                    f"{resolved[t].method.request}",
                    *(
                        f"at {x.path or 'the message'!r}: {x.producer or 'missing'} vs {x.consumer}"
                        for x in ms[:5]
                    ),
                ),
                help="give each step a compatible request, or map fields with "
                "'with: {field: $input.field}'",
            )
        )
    return InputType(typed, o_method.params, unknown, tuple(diags))

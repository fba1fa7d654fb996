"""Reference checks of a blueprint: what a `step.path` names, and whether it fits.

`ReferenceChecker` collects `Diagnostic`s: it walks a reference's field path
to its type and reports each way a produced value does not fit the field that
consumes it, with near-miss suggestions (`did_you_mean`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from modelwire.broker.blueprint import Ref
from modelwire.codegen.compat import Mismatch, Typed, field_type, render_type
from modelwire.codegen.schema import MessageType, OptionalType
from modelwire.diagnostics import Diagnostic, Location

__all__ = ["ReferenceChecker", "did_you_mean", "suggest"]


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    s = suggest(name, candidates)
    return f"; did you mean {s!r}?" if s else ""


def _join(head: str, tail: str) -> str:
    """A field path and a path below it: `boxes` + `[].x` -> `boxes[].x`."""
    if not head or not tail:
        return head or tail
    return head + tail if tail.startswith(("[", "{")) else f"{head}.{tail}"


@dataclass
class ReferenceChecker:
    """The checks of references, and the diagnostics they found."""

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
                    f"{did_you_mean(name, names)}",
                    ref.location,
                    notes=[f"its fields: {', '.join(names) or '(none)'}"],
                )
                return None
            t = Typed(t.schema, ft)
        return t

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

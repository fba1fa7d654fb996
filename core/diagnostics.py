"""Compiler-style diagnostics: collected, sorted by location, rendered once.

    blueprints/x.yaml:14:11: error[MW201]: ...
        note line
      help: what to do
    1 error in blueprints/x.yaml

Every diagnostic carries a stable code (documented in `CODES`), a one-line
message, a location (1-based line and column) and optional notes and help. The
CLI and `BlueprintError.__str__` both use `render()`.

Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["CODES", "Diagnostic", "Location", "render"]

CODES: Mapping[str, str] = {
    "MW001": "the file is not valid YAML",
    "MW002": "the blueprint does not have the expected structure",
    "MW101": "unknown model",
    "MW102": "unknown method of a model",
    "MW103": "unknown step",
    "MW104": "unknown field",
    "MW105": "the model cannot be resolved (bundle, catalog or address)",
    "MW201": "incompatible types",
    "MW202": "missing field",
    "MW203": "cardinality mismatch (singular, repeated, map)",
    "MW204": "tensor dtype mismatch",
    "MW205": "$input consumers need different types",
    "MW301": "cycle between steps",
    "MW302": "unused step",
    "MW303": "output is not a step",
    "MW401": "the model cannot be fused into the broker",
}


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A position in a file; `line` and `column` are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str  # "MW201": stable, documented in CODES
    message: str  # the first line, without location or code
    location: Location | None  # None only for whole-file problems
    notes: tuple[str, ...] = ()
    help: str | None = None
    severity: str = "error"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        return (
            (loc.file, loc.line, loc.column, self.code, self.message)
            if loc
            else ("", 0, 0, self.code, self.message)
        )


def render(diagnostics: Iterable[Diagnostic], file: str | None = None) -> str:
    """Sorted diagnostics, one block each, then a count line naming the file."""
    diags = sorted(diagnostics, key=Diagnostic.sort_key)
    out = []
    for d in diags:
        where = f"{d.location}: " if d.location else (f"{file}: " if file else "")
        out.append(f"{where}{d.severity}[{d.code}]: {d.message}")
        out.extend(f"    {n}" for n in d.notes)
        if d.help:
            out.append(f"  help: {d.help}")
    errors = sum(1 for d in diags if d.severity == "error")
    if errors:
        noun = "error" if errors == 1 else "errors"
        out.append(f"{errors} {noun} in {file}" if file else f"{errors} {noun}")
    return "\n".join(out)

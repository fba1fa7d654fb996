"""Cells and plain-text tables, as every bench script prints them."""

from __future__ import annotations

import math
import statistics


def fmt(v: float, spec: str = ",.0f") -> str:
    """One value, or 'n/a' for None and nan."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{spec}}"


def fmt_range(vals: list[float], spec: str = ",.0f", suffix: str = "") -> str:
    """'median [min-max]' of the values that are there (just the value when there is one)."""
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) == 1:
        return f"{m:{spec}}{suffix}"
    return f"{m:{spec}}{suffix} [{min(vals):{spec}}-{max(vals):{spec}}]"


def table(headers: list[str], rows: list[list[str]], align: str) -> str:
    """Columns padded to their widest cell; `align` has one 'l' or 'r' per column."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])

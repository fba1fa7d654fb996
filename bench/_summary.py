"""The rows of a run by scenario and repetition: medians, paired ratios and differences."""

from __future__ import annotations

import math
from typing import Any

from _common import median


class Summary:
    """Rows that ran (`by[scenario][rep]`) and rows that failed (`errors`)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = [r for r in rows if "error" not in r]
        self.errors = [r for r in rows if "error" in r]
        self.by: dict[str, dict[int, dict[str, Any]]] = {}
        for r in self.rows:
            self.by.setdefault(r["scenario"], {})[r["rep"]] = r

    def has(self, name: str) -> bool:
        return name in self.by

    def status(self, name: str) -> str:
        return "failed" if any(r["scenario"] == name for r in self.errors) else "not run"

    def values(self, name: str, metric: str) -> list[float]:
        return [r.get(metric, math.nan) for r in self.by.get(name, {}).values()]

    def med(self, name: str, metric: str) -> float:
        return median(self.values(name, metric))

    def paired(self, num: str, den: str, metric: str) -> list[float]:
        """num/den per repetition where both ran."""
        out = []
        for rep, d in self.by.get(den, {}).items():
            n = self.by.get(num, {}).get(rep, {}).get(metric)
            if n is not None and d.get(metric):
                out.append(n / d[metric])
        return out

    def diff(self, num: str, den: str, metric: str) -> list[float]:
        """num - den per repetition where both ran."""
        return [
            self.by[num][rep][metric] - d[metric]
            for rep, d in self.by.get(den, {}).items()
            if rep in self.by.get(num, {})
        ]

    def best_of(self, names: list[str], metric: str, rep: int) -> tuple[float, str] | None:
        """The highest `metric` among `names` in one repetition, if all of them ran."""
        vals = [(self.by[n][rep][metric], n) for n in names if rep in self.by.get(n, {})]
        return max(vals) if len(vals) == len(names) else None

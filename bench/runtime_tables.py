"""The building blocks of bench/runtime.py's tables: headers, rows, ratio cells."""

from __future__ import annotations

import statistics

from _summary import Summary
from _tables import fmt, fmt_range, table
from runtime_scenarios import (
    LABELS,
    label,
)

METRIC_HEADERS = [
    "calls/s median [min-max]",
    "p50 us",
    "p99 us",
    "srv CPU us/call",
    "cli CPU us/call",
    "other load",
]


def small_rows(s: Summary, names: list[str]) -> list[list[str]]:
    """The scenario table's rows of (a) and (c)."""
    out = []
    for n in names:
        if not s.has(n):
            out.append([n, label(n), s.status(n), "", "", "", "", ""])
            continue
        out.append(
            [
                n,
                label(n),
                fmt_range(s.values(n, "calls_per_s")),
                fmt(s.med(n, "lat_p50_us")),
                fmt(s.med(n, "lat_p99_us")),
                fmt(s.med(n, "server_cpu_us_per_call")),
                fmt(s.med(n, "cpu_us_per_call")),
                fmt(s.med(n, "other_cores"), ".2f"),
            ]
        )
    return out


def ratio_cell(vals: list[float], higher_is_faster: bool = True) -> tuple[str, str]:
    """('0.97x [0.91-1.02]', 'baseline faster')-style cells."""
    if not vals:
        return "n/a", ""
    m = statistics.median(vals)
    text = fmt_range(vals, ".2f", "x") if len(vals) > 1 else f"{m:.2f}x"
    mw_faster = m > 1 if higher_is_faster else m < 1
    return text, (
        "about equal"
        if abs(m - 1) < 0.005
        else "modelwire faster"
        if mw_faster
        else "baseline faster"
    )


def inproc_table(s: Summary, names: list[str]) -> None:
    rows = [
        [
            n,
            LABELS[n.split("/")[0]],
            fmt(s.med(n, "lat_p50_us")),
            fmt(s.med(n, "cpu_us_per_call")),
            fmt(s.med(n, "other_cores"), ".2f"),
        ]
        for n in names
        if s.has(n)
    ]
    if rows:
        print(table(["in-process", "what", "p50 us", "CPU us/call", "other load"], rows, "llrrr"))


def overhead_rows(s: Summary, pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Server CPU per call minus the same work done in-process, paired per repetition."""
    rows = []
    for server, inproc in pairs:
        vals = []
        for rep, r in s.by.get(server, {}).items():
            i = s.by.get(inproc, {}).get(rep)
            if i is not None:
                vals.append(r["server_cpu_us_per_call"] - i["cpu_us_per_call"])
        if vals:
            rows.append([server, f"- {inproc}", fmt_range(vals, ",.0f", " us")])
    return rows

"""The tables and verdicts of bench/batching.py, from the rows of a run (or of its --json)."""

from __future__ import annotations

import statistics

from _summary import Summary
from _tables import fmt, fmt_range, table

KINDS = ("sync", "aio")
GOAL_A, GOAL_B, GOAL_C = 2.0, 3.0, 1.1

LABELS = {
    "mw": "modelwire serve, unbatched",
    "mwb": "modelwire serve, batched",
    "acumos": "acumos-model-runner",
}


def label(server: str) -> str:
    impl, _, rest = server.partition("-")
    if impl == "acumos":
        n = int(rest.removeprefix("w"))
        return f"{LABELS[impl]} ({n} gunicorn worker{'s' if n > 1 else ''})"
    kind, _, workers = rest.partition("-w")
    return f"{LABELS[impl]}, --server {kind}" + (f" --workers {workers}" if workers else "")


def report(s: Summary, parts: set[str]) -> list[str]:
    """Print the tables; return the verdict lines."""
    out = []
    if "a" in parts:
        out.append(_part_a(s))
    if "b" in parts:
        out += _part_b(s)
    if "c" in parts:
        out += _part_c(s)
    return out


def _rows(s: Summary, load: str) -> list[str]:
    return sorted(n for n in s.by if n.endswith(f"/{load}")) + sorted(
        {e["scenario"] for e in s.errors if e["scenario"].endswith(f"/{load}")} - set(s.by)
    )


def _table(s: Summary, names: list[str], latency: str) -> None:
    headers = ["scenario", "server", "calls/s median [min-max]", latency, "srv CPU us/call"]
    headers += ["batch mean", "batch p50 <=", "batches", "other load"]
    rows = []
    for n in names:
        if not s.has(n):
            rows.append([n, label(n.partition("/")[0]), s.status(n), "", "", "", "", "", ""])
            continue
        rows.append(
            [
                n,
                label(n.partition("/")[0]),
                fmt_range(s.values(n, "calls_per_s")),
                fmt(s.med(n, "lat_p50_us" if "p50" in latency else "lat_mean_us")),
                fmt(s.med(n, "server_cpu_us_per_call")),
                fmt(s.med(n, "batch_mean"), ".1f"),
                fmt(s.med(n, "batch_p50_le"), ".0f"),
                fmt(s.med(n, "batches")),
                fmt(s.med(n, "other_cores"), ".2f"),
            ]
        )
    print(table(headers, rows, "llrrrrrrr"))


def _verdict(what: str, vals: list[float], goal: float, higher: bool) -> str:
    if not vals:
        return f"{what}: n/a (no repetition ran both sides)"
    m = statistics.median(vals)
    met = m >= goal if higher else m <= goal
    sign = ">=" if higher else "<="
    return (
        f"{what}: {fmt_range(vals, '.2f', 'x')} over {len(vals)} reps "
        f"(goal {sign} {goal:g}x): {'met' if met else 'NOT met'}"
    )


def _part_a(s: Summary) -> str:
    print("\n(a) iris RandomForest, 8 concurrent Python clients, 1 row per call")
    names = sorted({n for n in [*s.by, *(e["scenario"] for e in s.errors)] if "/c8" in n})
    _table(s, names, "p50 us")
    batched = [n for n in s.by if n.startswith("mwb-") and "/c8" in n]
    acumos = [n for n in s.by if n.startswith("acumos-") and "/c8" in n]
    ratios, best = [], []
    for rep in sorted({r for n in batched + acumos for r in s.by[n]}):
        if not batched or not acumos:
            break
        mine = s.best_of(batched, "calls_per_s", rep)
        theirs = s.best_of(acumos, "calls_per_s", rep)
        if mine and theirs:
            ratios.append(mine[0] / theirs[0])
            best.append(f"rep {rep + 1}: {mine[1]} {mine[0]:,.0f} vs {theirs[1]} {theirs[0]:,.0f}")
    for line in best:
        print(f"  best of each side, {line}")
    return _verdict("(a) batched best / Acumos best calls/s at 8 clients", ratios, GOAL_A, True)


def _part_b(s: Summary) -> list[str]:
    print("\n(b) iris RandomForest, h2load: 1 connection, 64 streams in flight (mean latency)")
    _table(s, _rows(s, "h2-m64"), "mean us")
    return [
        _verdict(
            f"(b) --server {k}: batched / unbatched calls/s at 64 streams",
            s.paired(f"mwb-{k}/h2-m64", f"mw-{k}/h2-m64", "calls_per_s"),
            GOAL_B,
            True,
        )
        for k in KINDS
        if s.has(f"mwb-{k}/h2-m64")
    ]


def _part_c(s: Summary) -> list[str]:
    print("\n(c) iris RandomForest, 1 caller (sync stub, one call after another)")
    _table(s, _rows(s, "seq"), "p50 us")
    return [
        _verdict(
            f"(c) --server {k}: batched / unbatched p50 latency at 1 caller",
            s.paired(f"mwb-{k}/seq", f"mw-{k}/seq", "lat_p50_us"),
            GOAL_C,
            False,
        )
        for k in KINDS
        if s.has(f"mwb-{k}/seq")
    ]

"""The tables and verdicts of bench/http_bench.py, from the rows of a run (or its --json)."""

from __future__ import annotations

import argparse
import math
import statistics

from _summary import Summary
from _tables import fmt, fmt_range, table
from http_scenarios import (
    CONC_A,
    CONC_D,
    GOAL_A,
    GOAL_B,
    GOAL_C,
    H2LOAD_CONNS,
    KINDS,
    NOISE_D,
    ROWS_C,
    STAR,
    a_names,
    label,
)

HEADERS = ["scenario", "server", "calls/s median [min-max]", "p50 us", "srv CPU us/call", "other"]


def report(s: Summary, args: argparse.Namespace) -> list[str]:
    """Print each part's table; return the verdict lines of the parts that ran."""
    verdicts = []
    for part, fn in (("a", _part_a), ("b", _part_b), ("c", _part_c), ("d", _part_d)):
        if any(n.startswith(f"{part}/") for n in s.by) or any(
            r["scenario"].startswith(f"{part}/") for r in s.errors
        ):
            verdicts.append(fn(s, args))
    return verdicts


def _rows(s: Summary, names: list[str], metric: str = "calls_per_s") -> list[list[str]]:
    out = []
    for n in names:
        key = n.split("/")[1]
        if not s.has(n):
            out.append([n, label(key), s.status(n), "", "", ""])
            continue
        spec = ",.1f" if metric == "lat_p50_ms" else ",.0f"
        out.append(
            [
                n,
                label(key),
                fmt_range(s.values(n, metric), spec),
                fmt(s.med(n, "lat_p50_us")),
                fmt(s.med(n, "server_cpu_us_per_call")),
                fmt(s.med(n, "other_cores"), ".2f"),
            ]
        )
    return out


def _best_ratio(
    s: Summary, ours: list[str], theirs: list[str], metric: str, *, lower: bool = False
) -> tuple[list[float], list[str]]:
    """Per repetition: our best / their best (`lower`: the lowest is best), and which of
    ours was best."""
    ratios, winners = [], []
    reps = {rep for n in ours + theirs for rep in s.by.get(n, {})}
    for rep in sorted(reps):
        mine = [(s.by[n][rep][metric], n) for n in ours if rep in s.by.get(n, {})]
        other = [(s.by[n][rep][metric], n) for n in theirs if rep in s.by.get(n, {})]
        if len(mine) != len(ours) or len(other) != len(theirs):
            continue
        pick = min if lower else max
        ratios.append(pick(mine)[0] / pick(other)[0])
        winners.append(pick(mine)[1])
    return ratios, winners


def _ratio(vals: list[float]) -> str:
    return fmt_range(vals, ".2f", "x") if vals else "n/a"


def _verdict(name: str, vals: list[float], goal: float, *, at_most: bool = False) -> str:
    if not vals:
        return f"{name}: no complete repetition"
    m = statistics.median(vals)
    met = m <= goal if at_most else m >= goal
    sign = "<=" if at_most else ">="
    return f"{name}: {m:.2f}x (goal {sign} {goal:g}x): {'met' if met else 'NOT met'}"


def _part_a(s: Summary, args: argparse.Namespace) -> str:
    names = a_names(args.acumos_workers, args.mw_workers)
    print(f"\n(a) iris, 1 row, JSON, {CONC_A} concurrent clients, POST /model/methods/classify")
    print(table(HEADERS, _rows(s, names["acumos"] + names["mw"]), "llrrrr"))
    ratios, winners = _best_ratio(s, names["mw"], names["acumos"], "calls_per_s")
    best = statistics.mode(winners) if winners else "n/a"
    print(f"modelwire best / acumos best, per repetition: {_ratio(ratios)} (usually {best})")
    return _verdict(f"(a) HTTP/JSON {CONC_A} clients vs acumos' JSON", ratios, GOAL_A)


def _part_b(s: Summary, args: argparse.Namespace) -> str:
    print("\n(b) h2load --h1 against the HTTP face and a hand-written uvicorn + Starlette app")
    lines, worst = [], math.inf
    for c in H2LOAD_CONNS:
        names = [f"b/{k}/c{c}" for k in ("mw-aio", STAR["aio"], "mw-sync", STAR["sync"])]
        print(f"  {c} connection{'s' * (c > 1)}:")
        print(table(HEADERS, _rows(s, names), "llrrrr"))
        ours, theirs = [n for n in names if "/mw-" in n], [n for n in names if "/star-" in n]
        best, _ = _best_ratio(s, ours, theirs, "calls_per_s")
        pairs = {k: s.paired(f"b/mw-{k}/c{c}", f"b/{STAR[k]}/c{c}", "calls_per_s") for k in KINDS}
        print(
            f"  c{c}: best / best {_ratio(best)}; aio / on the loop {_ratio(pairs['aio'])}; "
            f"sync / thread pool {_ratio(pairs['sync'])}"
        )
        if best:
            worst = min(worst, statistics.median(best))
        lines.append(f"c{c} {statistics.median(best):.2f}x" if best else f"c{c} n/a")
    if math.isinf(worst):
        return "(b) HTTP path vs uvicorn + Starlette: no complete repetition"
    met = "met" if worst >= GOAL_B else "NOT met"
    return f"(b) HTTP path vs uvicorn + Starlette: {', '.join(lines)} (goal >= {GOAL_B}x): {met}"


def _part_c(s: Summary, args: argparse.Namespace) -> str:
    names = ["c/acumos-w1", "c/mw-sync", "c/mw-aio"]
    print(f"\n(c) one request of {ROWS_C:,} rows, JSON, one client: time per request")
    rows = []
    for n in names:
        vals = [v / 1e3 for v in s.values(n, "lat_p50_us")]
        rows.append([n, label(n.split("/")[1]), fmt_range(vals, ",.1f", " ms") if s.has(n) else
                     s.status(n), fmt(s.med(n, "server_cpu_us_per_call") / 1e3, ",.1f"),
                     fmt(s.med(n, "other_cores"), ".2f")])  # fmt: skip
    print(table(["scenario", "server", "p50 median [min-max]", "srv CPU ms", "other"], rows,
                "llrrr"))  # fmt: skip
    ratios, _ = _best_ratio(s, names[1:], names[:1], "lat_p50_us", lower=True)
    print(f"modelwire best / acumos, per repetition: {_ratio(ratios)}")
    return _verdict(f"(c) {ROWS_C:,}-row JSON request vs acumos", ratios, GOAL_C, at_most=True)


def _part_d(s: Summary, args: argparse.Namespace) -> str:
    print("\n(d) gRPC with the HTTP face on (--http-port 0) and off (--no-http)")
    rows, worst = [], 0.0
    clients = {"iris-seq": "iris, sequential", "iris-aio": f"iris, {CONC_D} in flight",
               "mw-echo": "4 MB tensor echo"}  # fmt: skip
    for kind in KINDS:
        for client, what in clients.items():
            on, off = f"d/mw-{kind}-http/{client}", f"d/mw-{kind}-nohttp/{client}"
            vals = s.paired(on, off, "calls_per_s")
            rows.append([f"{kind}: {what}", fmt_range(s.values(on, "calls_per_s")),
                         fmt_range(s.values(off, "calls_per_s")), _ratio(vals)])  # fmt: skip
            if vals:
                m = statistics.median(vals)
                held = min(vals) <= 1 <= max(vals) or len(vals) == 1
                worst = max(worst, abs(m - 1) if held else max(abs(m - 1), NOISE_D + 1e-9))
    print(table(["calls", "HTTP on: calls/s", "HTTP off: calls/s", "on / off"], rows, "lrrr"))
    if not rows or all(r[3] == "n/a" for r in rows):
        return "(d) gRPC with the HTTP face on: no complete repetition"
    met = "met" if worst <= NOISE_D else "NOT met"
    return (
        f"(d) gRPC with the HTTP face on / off: within {worst:.0%} (goal: within noise, "
        f"{NOISE_D:.0%}): {met}"
    )

"""The tables and verdicts of bench/broker.py, from the rows of a run (or of its --json)."""

from __future__ import annotations

import statistics

from _summary import Summary
from _tables import fmt, fmt_range, table
from broker_scenarios import CONC, GOAL_A, GOAL_B, GOAL_FUSED


def ms(v: float) -> float:
    return v / 1e3


def rcell(vals: list[float]) -> str:
    return fmt_range(vals, ".2f", "x") if vals else "n/a"


_ABBR = {"forwarded": "fwd", "transcoded": "tx"}


def edges_text(s: Summary, name: str) -> str:
    """'s1 fwd, s2 tx' from the broker's metrics (last repetition): each step's inputs
    per solution call (x3: three edges per call), by mode."""
    rows = [r for r in s.by.get(name, {}).values() if r.get("edges")]
    if not rows:
        return ""
    r = rows[-1]
    calls = r.get("solution_calls") or 1
    parts = []
    for step, modes in sorted(r["edges"].items()):
        for mode, n in sorted(modes.items()):
            per = n / calls
            parts.append(f"{step} {_ABBR.get(mode, mode)}" + (f" x{per:.3g}" if per != 1 else ""))
    return ", ".join(parts)


def check_edges(s: Summary, name: str, step: str, mode: str) -> tuple[bool, str]:
    """Whether, in every repetition, each call's `step` input was handled in `mode` only."""
    rows = list(s.by.get(name, {}).values())
    if not rows:
        return False, "not run"
    ok = True
    bits = []
    for r in rows:
        e = r.get("edges", {}).get(step, {})
        calls = r.get("solution_calls", 0)
        other = sum(n for m, n in e.items() if m != mode)
        good = calls > 0 and e.get(mode, 0) == calls and other == 0 and calls == r["n_total"]
        ok &= good
        bits.append(f"{e.get(mode, 0)}/{calls}" + ("" if not other else f" (+{other} other)"))
    return ok, ", ".join(bits)


def metric_table(s: Summary, names: list[str], labels: dict[str, str], unit: str) -> str:
    scale = ms if unit == "ms" else (lambda v: v)
    spec = ",.2f" if unit == "ms" else ",.0f"
    rows = []
    for n in names:
        if not s.has(n):
            rows.append([n, labels.get(n, ""), s.status(n), *[""] * 8])
            continue
        rows.append(
            [
                n,
                labels.get(n, ""),
                fmt_range(s.values(n, "calls_per_s")),
                fmt(scale(s.med(n, "lat_p50_us")), spec),
                fmt(scale(s.med(n, "lat_p99_us")), spec),
                fmt(scale(s.med(n, "broker_cpu_us_per_call")), spec),
                fmt(scale(s.med(n, "broker_cpu_us_per_hop")), spec),
                fmt(scale(s.med(n, "models_cpu_us_per_call")), spec),
                fmt(scale(s.med(n, "cpu_us_per_call")), spec),
                edges_text(s, n),
                fmt(s.med(n, "other_cores"), ".2f"),
            ]
        )
    u = unit
    headers = [
        "scenario",
        "what",
        "calls/s median [min-max]",
        f"p50 {u}",
        f"p99 {u}",
        f"broker CPU {u}/call",
        f"broker CPU {u}/hop",
        f"models CPU {u}/call",
        f"client CPU {u}/call",
        "edges (broker /metrics)",
        "other load",
    ]
    return table(headers, rows, "llrrrrrrrlr")


def _at_most(vals: list[float], goal: float, what: str, detail: str, unmeasured: str) -> str:
    """'<what>: MET (1.50x [1.45-1.54], 5 reps; <detail>)' for paired ratios <= goal."""
    if not vals:
        return unmeasured
    m = statistics.median(vals)
    return (
        f"{what}: {'MET' if round(m, 2) <= goal else 'NOT MET'} ({m:.2f}x "
        f"[{min(vals):.2f}-{max(vals):.2f}], {len(vals)} reps; {detail})"
    )


def report(s: Summary, parts: set[str], labels: dict[str, str]) -> list[str]:
    verdicts: list[str] = []
    if "a" in parts:
        print(
            "\n(a) 3-step chain of add1(value: int) -> int; broker = one call to `modelwire "
            "run`, direct = the client calls the 3 `modelwire serve` processes in sequence"
        )
        names = [f"chain/{w}-{c}" for c in ("seq", f"c{CONC}") for w in ("broker", "direct")]
        print(metric_table(s, names, labels, "us"))
        print("\n  broker / direct, paired per repetition (median [min-max]):")
        rows = []
        for c, cname in (("seq", "1 in flight"), (f"c{CONC}", f"{CONC} in flight")):
            b, d = f"chain/broker-{c}", f"chain/direct-{c}"
            added = s.diff(b, d, "lat_p50_us")
            rows.append(
                [
                    cname,
                    rcell(s.paired(b, d, "lat_p50_us")),
                    rcell(s.paired(b, d, "lat_p99_us")),
                    rcell(s.paired(b, d, "calls_per_s")),
                    fmt_range(added, ",.0f", " us"),
                ]
            )
        print(
            table(
                ["in flight", "p50 latency", "p99 latency", "calls/s", "p50 added by broker"],
                rows,
                "lrrrr",
            )
        )
        verdicts.append(
            _at_most(
                s.paired("chain/broker-seq", "chain/direct-seq", "lat_p50_us"),
                GOAL_A,
                f"Goal (a) broker <= {GOAL_A}x the direct sequential latency (p50, 1 in flight)",
                f"broker {fmt(s.med('chain/broker-seq', 'lat_p50_us'))} us vs "
                f"direct {fmt(s.med('chain/direct-seq', 'lat_p50_us'))} us; broker CPU "
                f"{fmt(s.med('chain/broker-seq', 'broker_cpu_us_per_hop'))} us per hop",
                f"Goal (a) broker <= {GOAL_A}x direct: NOT MEASURED",
            )
        )
    if "b" in parts:
        print(
            "\n(b) 3 parallel branches (each sleeps 20 ms) + fan-in step through the broker, "
            "vs one branch called directly; 1 call in flight, sync client"
        )
        names = ["fanin/broker", "branch/direct"]
        print(metric_table(s, names, labels, "ms"))
        vals = s.paired("fanin/broker", "branch/direct", "lat_p50_us")
        p99 = s.paired("fanin/broker", "branch/direct", "lat_p99_us")
        added = s.diff("fanin/broker", "branch/direct", "lat_p50_us")
        print(
            f"\n  fan-in through the broker / one branch direct, paired: p50 {rcell(vals)}, "
            f"p99 {rcell(p99)}; the broker adds {fmt_range([ms(a) for a in added], '.2f', ' ms')}"
            " at p50 (3 branches in parallel + a 4th step in series)"
        )
        verdicts.append(
            _at_most(
                vals,
                GOAL_B,
                f"Goal (b) 3 parallel 20 ms branches + fan-in <= {GOAL_B}x one branch direct (p50)",
                f"{ms(s.med('fanin/broker', 'lat_p50_us')):.2f} ms vs "
                f"{ms(s.med('branch/direct', 'lat_p50_us')):.2f} ms",
                f"Goal (b) fan-in <= {GOAL_B}x one branch: NOT MEASURED",
            )
        )
    if "c" in parts:
        print(
            "\n(c) 4 MB Tensor (1M float32) + a scale through 2 steps; ms per call; "
            "1 call in flight, sync client, request encoded once"
        )
        names = ["tensor/broker-fwd", "tensor/broker-tx", "tensor/direct"]
        print(metric_table(s, names, labels, "ms"))
        rows = []
        for num, den, what in (
            ("tensor/broker-tx", "tensor/broker-fwd", "transcoded / forwarded"),
            ("tensor/broker-fwd", "tensor/direct", "forwarded / direct 2 calls"),
            ("tensor/broker-tx", "tensor/direct", "transcoded / direct 2 calls"),
        ):
            rows.append(
                [
                    what,
                    rcell(s.paired(num, den, "lat_p50_us")),
                    rcell(s.paired(num, den, "broker_cpu_us_per_call"))
                    if "direct" not in den
                    else "",
                ]
            )
        print("\n  ratios, paired per repetition (median [min-max]):")
        print(table(["", "ms per call (p50)", "broker CPU per call"], rows, "lrr"))
        fok, ftext = check_edges(s, "tensor/broker-fwd", "s2", "forwarded")
        tok, ttext = check_edges(s, "tensor/broker-tx", "s2", "transcoded")
        print(
            "\n  verified from modelwire_edges_total (step s2, per repetition, edges/solution "
            "calls):\n"
            f"    tensor/broker-fwd: s2 forwarded {ftext} -> "
            f"{'FORWARDED as expected' if fok else 'NOT as expected'}\n"
            f"    tensor/broker-tx:  s2 transcoded {ttext} -> "
            f"{'TRANSCODED as expected' if tok else 'NOT as expected'}"
        )
        tx = s.paired("tensor/broker-tx", "tensor/broker-fwd", "lat_p50_us")
        verdicts.append(
            "Check (c) forwarding vs transcoding of a 4 MB Tensor: "
            f"{'OK' if fok and tok else 'FAILED'} (metrics: fwd scenario forwarded "
            f"{'every call' if fok else 'NOT every call'}, tx scenario transcoded "
            f"{'every call' if tok else 'NOT every call'}); transcoded/forwarded "
            f"{rcell(tx)}, forwarded/direct "
            f"{rcell(s.paired('tensor/broker-fwd', 'tensor/direct', 'lat_p50_us'))}"
        )
    verdicts += _fused(s, parts, labels)
    if "a" in parts and s.has("chain/broker-seq"):
        ok, text = check_edges(s, "chain/broker-seq", "s2", "forwarded")
        print(
            f"\n  (a) chain edges from /metrics: s2 forwarded {text} -> "
            f"{'every edge forwarded' if ok else 'NOT all forwarded'}"
        )
    return verdicts


# (part, fused scenario, its unfused twin, the one direct call it is measured against)
_FUSED_PAIRS = [
    ("a", "chain/fused-seq", "chain/broker-seq", "add1/direct-seq", "3-step add1 chain"),
    ("b", "fanin/fused", "fanin/broker", "branch/direct", "3 x 20 ms branches + fan-in"),
    ("c", "tensor/fused-fwd", "tensor/broker-fwd", "tensor/direct-one", "4 MB tensor, 2 steps"),
]


def _fused(s: Summary, parts: set[str], labels: dict[str, str]) -> list[str]:
    """(f): fused against unfused and against one direct call, paired per repetition."""
    pairs = [p for p in _FUSED_PAIRS if p[0] in parts]
    if not pairs:
        return []
    print(
        "\n(f) fused (`modelwire run --fuse`: the models inside the broker) beside unfused; "
        "1 call in flight, sync client"
    )
    names = [n for _, f, u, d, _ in pairs for n in (f, u, d)]
    if "a" in parts:
        names.append(f"chain/fused-c{CONC}")
    print(metric_table(s, names, labels, "us"))
    rows = []
    verdicts = []
    for part, fused, unfused, direct, what in pairs:
        vs_direct = s.paired(fused, direct, "lat_p50_us")
        rows.append([what, rcell(vs_direct), rcell(s.paired(fused, unfused, "lat_p50_us"))])
        goal = GOAL_FUSED[part]
        verdicts.append(
            _at_most(
                vs_direct,
                goal,
                f"Goal (f{part}) fused {what} <= {goal}x one direct call (p50)",
                f"fused {fmt(s.med(fused, 'lat_p50_us'))} us vs direct "
                f"{fmt(s.med(direct, 'lat_p50_us'))} us; unfused "
                f"{fmt(s.med(unfused, 'lat_p50_us'))} us",
                f"Goal (f{part}) fused {what} <= {goal}x: NOT MEASURED",
            )
        )
    print("\n  ratios of p50 latency, paired per repetition (median [min-max]):")
    print(table(["", "fused / one direct call", "fused / unfused"], rows, "lrr"))
    return verdicts

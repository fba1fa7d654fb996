"""The tables and verdicts of bench/runtime.py, from the rows of a run (or of its --json)."""

from __future__ import annotations

import argparse
import statistics
from collections import Counter

from _summary import Summary
from _tables import fmt, fmt_range, table
from runtime_scenarios import (
    CONC_A,
    CONC_C,
    GOAL_A,
    GOAL_B,
    GOAL_C,
    KINDS,
    LABELS,
    c_names,
)
from runtime_tables import (
    METRIC_HEADERS,
    inproc_table,
    overhead_rows,
    ratio_cell,
    small_rows,
)


def report(s: Summary, args: argparse.Namespace, parts: set[str]) -> list[str]:
    """Print the tables; return the verdict lines."""
    return [
        verdict(s, args)
        for p, verdict in (("a", _part_a), ("b", _part_b), ("c", _part_c))
        if p in parts
    ]


def _part_a(s: Summary, args: argparse.Namespace) -> str:
    """(a) iris, modelwire vs hand-written: print the tables; return the verdict."""
    print(
        f"\n(a) iris RandomForest(n_estimators=10), 1 row; clients: seq = sync stub, "
        f"c{CONC_A} = grpc.aio with {CONC_A} in flight, one channel"
    )
    names = [
        f"{impl}-{k}/{c}" for c in ("seq", f"c{CONC_A}") for k in KINDS for impl in ("mw", "hw")
    ]
    print(table(["scenario", "server", *METRIC_HEADERS], small_rows(s, names), "llrrrrrr"))
    print("\n  modelwire / hand-written, calls/s paired per repetition (median [min-max]):")
    rows = []
    met: dict[str, list[str]] = {}
    for c, cname in (("seq", "sequential"), (f"c{CONC_A}", f"{CONC_A} in flight")):
        for k in KINDS:
            vals = s.paired(f"mw-{k}/{c}", f"hw-{k}/{c}", "calls_per_s")
            cpu = s.paired(f"hw-{k}/{c}", f"mw-{k}/{c}", "server_cpu_us_per_call")
            text, who = ratio_cell(vals)
            ok = bool(vals) and round(statistics.median(vals), 2) >= GOAL_A
            if ok:
                met.setdefault(cname, []).append(f"{k} {statistics.median(vals):.2f}x")
            rows.append(
                [
                    cname,
                    f"{k} vs {k}",
                    text,
                    who,
                    "yes" if ok else "no" if vals else "n/a",
                    fmt_range(cpu, ".2f", "x"),
                ]
            )
    print(
        table(
            [
                "clients",
                "servers",
                "mw/hw calls/s",
                "faster",
                f">= {GOAL_A}x",
                "hw/mw srv CPU per call",
            ],
            rows,
            "llllll",
        )
    )
    for c, cname in (("seq", "sequential"), (f"c{CONC_A}", f"{CONC_A} in flight")):
        best = Counter(
            b[1].split("/")[0]
            for rep in range(args.reps)
            if (b := s.best_of([f"mw-{k}/{c}" for k in KINDS], "calls_per_s", rep))
        )
        if best:
            print(
                f"  fastest modelwire server kind, {cname}: "
                + ", ".join(
                    f"{k.removeprefix('mw-')} in {n}/{sum(best.values())} reps"
                    for k, n in best.most_common()
                )
            )
    if s.has("model/inproc") and s.has("mwcodec/inproc"):
        alone = fmt(s.med("model/inproc", "cpu_us_per_call"))
        codec = fmt(s.med("mwcodec/inproc", "cpu_us_per_call"))
        print(
            f"  in-process, no gRPC: classify alone {alone} us CPU/call; "
            f"modelwire decode + classify + encode {codec} us CPU/call"
        )
    concs = ("sequential", f"{CONC_A} in flight")
    got = {(r[0], r[1].split()[0]): r[2].split()[0] for r in rows if r[2] != "n/a"}
    detail = "; ".join(
        f"{c}: " + ", ".join(f"{k} {got.get((c, k), 'n/a')}" for k in KINDS) for c in concs
    )
    both = [k for k in KINDS if all(f"{k} " in " ".join(met.get(c, [])) for c in concs)]
    if not got:
        status = "NOT MEASURED"
    elif both:
        status = f"MET with {' and '.join(both)} at both concurrencies"
    elif all(met.get(c) for c in concs):
        status = "MET, " + ", ".join(
            f"{c} with {' and '.join(v.split()[0] for v in met[c])}" for c in concs
        )
    else:
        status = "NOT MET"
    if got and len(got) < len(KINDS) * len(concs):
        status += " (incomplete)"
    return (
        f"Goal (a) modelwire >= {GOAL_A}x hand-written grpcio calls/s at both "
        f"concurrencies: {status} ({detail})"
    )


def _part_b(s: Summary, args: argparse.Namespace) -> str:
    """(b) the 4 MB Tensor echo: print the tables; return the verdict."""
    print(
        "\n(b) 1M float32 (4 MB) echo, sequential sync client; "
        "ms per call = median of the per-repetition p50"
    )
    names = [n for k in KINDS for n in (f"mwecho-{k}/echo", f"raw-{k}/echo")]
    names.append("numpy/copy")
    rows = []
    for n in names:
        if not s.has(n):
            rows.append([n, LABELS[n.split("/")[0]], s.status(n), "", "", "", ""])
            continue
        rows.append(
            [
                n,
                LABELS[n.split("/")[0]],
                fmt_range([v / 1e3 for v in s.values(n, "lat_p50_us")], ".2f"),
                fmt(s.med(n, "lat_p99_us") / 1e3, ".2f"),
                fmt(s.med(n, "calls_per_s"), ",.0f"),
                fmt(s.med(n, "server_cpu_us_per_call") / 1e3, ".2f") if n != "numpy/copy" else "-",
                fmt(s.med(n, "other_cores"), ".2f"),
            ]
        )
    print(
        table(
            [
                "scenario",
                "what",
                "ms/call median [min-max]",
                "p99 ms",
                "calls/s",
                "srv CPU ms/call",
                "other load",
            ],
            rows,
            "llrrrrr",
        )
    )
    print("\n  ratios of ms per call, paired per repetition (median [min-max]):")
    rows = []
    best: tuple[float, str] | None = None
    for k in KINDS:
        vals = s.paired(f"mwecho-{k}/echo", f"raw-{k}/echo", "lat_p50_us")
        if vals:
            m = statistics.median(vals)
            best = min(best, (m, k)) if best else (m, k)
        text, _ = ratio_cell(vals, higher_is_faster=False)
        rows.append(
            [
                f"modelwire / raw echo ({k} servers)",
                text,
                "yes" if vals and round(statistics.median(vals), 2) <= GOAL_B else "no",
            ]
        )
    for k in KINDS:
        vals = s.paired(f"mwecho-{k}/echo", "numpy/copy", "lat_p50_us")
        rows.append([f"modelwire ({k}) / numpy.copy", fmt_range(vals, ".1f", "x"), ""])
    vals = s.paired("raw-sync/echo", "numpy/copy", "lat_p50_us")
    rows.append(["raw echo (sync) / numpy.copy", fmt_range(vals, ".1f", "x"), ""])
    print(table(["ratio", "value", f"<= {GOAL_B}x"], rows, "lll"))
    per_kind = ", ".join(f"{r[0].split('(')[1].split()[0]} {r[1].split()[0]}" for r in rows[:2])
    return f"Goal (b) modelwire Tensor echo <= {GOAL_B}x raw grpcio echo: " + (
        f"{'MET' if round(best[0], 2) <= GOAL_B else 'NOT MET'} (best {best[1]} server "
        f"{best[0]:.2f}x; {per_kind})"
        if best
        else "NOT MEASURED"
    )


def _part_c(s: Summary, args: argparse.Namespace) -> str:
    """(c) iris vs acumos-model-runner: print the tables; return the verdict."""
    cc = f"c{CONC_C}"
    names_c = c_names(args.workers, args.mw_workers)
    aw = "/".join(str(w) for w in args.workers)
    print(
        f"\n(c) iris vs acumos-model-runner 0.2.6 (Python 3.9, gunicorn sync workers x"
        f"{aw}, HTTP/1.1 + protobuf, a new connection per request; clients are threads). "
        f"modelwire: seq = sync stub on one channel; {cc} = grpc.aio with {CONC_C} in "
        f"flight on one channel, or on {CONC_C} channels (-{CONC_C}ch: one TCP connection "
        "per caller, which the kernel spreads over the workers)"
    )
    names = [n for c in names_c.values() for n in c["acumos"] + c["mw"]]
    print(table(["scenario", "server", *METRIC_HEADERS], small_rows(s, names), "llrrrrrr"))
    spread = []
    for n in names:
        shares = [
            max(w) / sum(w)
            for r in s.by.get(n, {}).values()
            if len(w := r.get("worker_cpu_s") or []) > 1 and sum(w) > 0
        ]
        if shares:
            spread.append(f"{n} {fmt_range([100 * x for x in shares], '.0f', '%')}")
    if spread:
        print(
            "  busiest worker's share of the workers' CPU (50% = even spread, 100% = one "
            "worker did all): " + "; ".join(spread)
        )

    def short(name: str) -> str:  # 'mw-aio-w2/c8-8ch' -> 'aio-w2', 'acumos-w1/seq' -> 'w1'
        return name.partition("/")[0].removeprefix("mw-").removeprefix("acumos-")

    print(
        "\n  best configuration of each side, per repetition (best = highest calls/s "
        "in that repetition), modelwire / acumos calls/s paired per repetition:"
    )
    rows = []
    results = []
    lines: list[tuple[str, list[str], list[str], str]] = [
        (cname, names_c[c]["mw"], names_c[c]["acumos"], "best vs best")
        for c, cname in (("seq", "sequential"), (cc, f"{CONC_C} concurrent"))
    ]
    # 1 worker each (the earlier like-for-like comparison), shown for reference
    lines += [
        (
            cname,
            [n for n in names_c[c]["mw"] if "-w" not in n.partition("/")[0]],
            [n for n in names_c[c]["acumos"] if n.startswith("acumos-w1/")],
            "1 worker each",
        )
        for c, cname in (("seq", "sequential"), (cc, f"{CONC_C} concurrent"))
        if 1 in args.workers
        and 1 in args.mw_workers
        and (len(args.workers) > 1 or len(args.mw_workers) > 1)
    ]
    reps = sorted({r["rep"] for r in s.rows})
    for cname, mw_names, ac_names, what in lines:
        ratios: list[float] = []
        best_mw: list[float] = []
        best_ac: list[float] = []
        won_mw: Counter[str] = Counter()
        won_ac: Counter[str] = Counter()
        for rep in reps:
            bm = s.best_of(mw_names, "calls_per_s", rep)
            ba = s.best_of(ac_names, "calls_per_s", rep)
            if bm is None or ba is None or not ba[0]:
                continue
            ratios.append(bm[0] / ba[0])
            best_mw.append(bm[0])
            best_ac.append(ba[0])
            won_mw[bm[1]] += 1
            won_ac[ba[1]] += 1
        text, _ = ratio_cell(ratios)
        ok = bool(ratios) and round(statistics.median(ratios), 2) >= GOAL_C
        n = len(ratios)
        rows.append(
            [
                cname,
                what,
                fmt_range(best_ac),
                ", ".join(f"{short(k)} {v}/{n}" for k, v in won_ac.most_common()) or "n/a",
                fmt_range(best_mw),
                ", ".join(f"{short(k)} {v}/{n}" for k, v in won_mw.most_common()) or "n/a",
                text,
                ("yes" if ok else "no") if what == "best vs best" else "",
            ]
        )
        if what == "best vs best":
            results.append(
                (
                    cname,
                    ratios,
                    ok,
                    won_mw.most_common(1)[0][0] if won_mw else "",
                    won_ac.most_common(1)[0][0] if won_ac else "",
                    best_ac,
                )
            )
    print(
        table(
            [
                "clients",
                "compared",
                "acumos calls/s",
                "acumos best (reps)",
                "modelwire calls/s",
                "modelwire best (reps)",
                "mw/acumos",
                f">= {GOAL_C}x",
            ],
            rows,
            "llrlrlll",
        )
    )
    # the sequential floor: how much of a sequential call is the model itself
    if results and results[0][1] and s.has("model/inproc"):
        _, _, _, mw_seq, ac_seq, ac_best = results[0]  # each side's most frequent best
        model = s.med("model/inproc", "lat_p50_us")
        p50 = {n: s.med(n, "lat_p50_us") for n in (ac_seq, mw_seq)}
        budget = 1e6 / (GOAL_C * statistics.median(ac_best))
        print(
            "  sequential, p50 per call (median over reps): "
            + ", ".join(f"{n} {fmt(v)} us" for n, v in p50.items())
            + f"; in-process classify alone {fmt(model)} us (= "
            + " and ".join(f"{100 * model / v:.0f}%" for v in p50.values())
            + f" of them). {GOAL_C}x acumos' best sequential calls/s allows about "
            f"{fmt(budget)} us per call, i.e. {fmt(budget - model)} us for client + "
            f"transport + server around the model; {mw_seq} spends "
            f"{fmt(p50[mw_seq] - model)} us there."
        )
    print("\n  where the server CPU goes (median of the per-repetition values):")
    inproc_table(s, ["model/inproc", "mwcodec/inproc", "acumos-model/inproc"])
    pairs = [(n, "acumos-model/inproc") for n in names_c["seq"]["acumos"]]
    pairs += [(n, "mwcodec/inproc") for n in names_c["seq"]["mw"]]
    rows = overhead_rows(s, pairs)
    if rows:
        print(
            "\n  runtime CPU per call (server CPU per call, sequential client, minus the "
            "same work in-process; all processes of a multi-worker server included):"
        )
        print(table(["server", "minus", "CPU per call"], rows, "llr"))
    measured = [r for r in results if r[1]]
    met = [r[0] for r in measured if r[2]]
    status = (
        "NOT MEASURED"
        if not measured
        else "MET"
        if len(met) == len(measured)
        else f"NOT MET (met at {' and '.join(met)} only)"
        if met
        else "NOT MET"
    ) + (" (incomplete)" if measured and len(measured) < len(results) else "")
    detail = "; ".join(
        f"{c} {statistics.median(v):.2f}x (modelwire {short(m)} vs acumos {short(a)})"
        if v
        else f"{c} n/a"
        for c, v, _, m, a, _ in results
    )
    return (
        f"Goal (c) modelwire >= {GOAL_C}x acumos-model-runner calls/s, each side's best "
        f"configuration per repetition: {status} ({detail})"
    )

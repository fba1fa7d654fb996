"""The tables and verdicts of bench/build.py: build times, image size, start to SERVING."""

from __future__ import annotations

import statistics
from typing import Any

from _tables import fmt_range, table

GOALS = {"rebuild": 0.25, "size": 1.1, "start_s": 3.0}


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} kB"


def report(r: dict[str, Any]) -> list[str]:
    c = r["config"]
    print(
        f"modelwire {c['modelwire']} image benchmark, {c['date']}: Python {c['python']}, "
        f"Docker engine {c['engine']}, {c['cpus']} CPUs; {c['reps']} cold/rebuild pairs, "
        f"{c['starts']} starts"
    )
    verdicts = []
    builds = r["builds"]
    cold = [b["cold"]["seconds"] for b in builds]
    warm = [b["rebuild"]["seconds"] for b in builds]
    ratios = [w / k for w, k in zip(warm, cold, strict=True)]
    print("\n(a) build time, s: median [min-max] over repetitions")
    rows = [
        [
            "cold: iris 1.0.0, no layer cache",
            fmt_range(cold, ".1f"),
            fmt_range([b["cold"]["before_steps_s"] for b in builds], ".2f"),
            f"{builds[-1]['cold']['cached_steps']} of {builds[-1]['cold']['steps']}",
        ],
        [
            "rebuild: iris 1.1.0 (model only)",
            fmt_range(warm, ".1f"),
            fmt_range([b["rebuild"]["before_steps_s"] for b in builds], ".2f"),
            f"{builds[-1]['rebuild']['cached_steps']} of {builds[-1]['rebuild']['steps']}",
        ],
    ]
    print(table(["build", "total", "before step 1", "steps cached"], rows, "lrrr"))
    print(
        f"layers shared by 1.0.0 and 1.1.0: {builds[-1]['layers_reused']} of "
        f"{builds[-1]['layers']} (the base's {r['base_layers']}, the venv; not the bundle's)"
    )
    print("slowest steps of the last cold build:")
    for line, seconds in builds[-1]["cold"]["slowest"]:
        text = " ".join(line.split())
        print(
            f"  {seconds:6.1f} s  {text if len(text) <= 100 else text[:40] + ' ... ' + text[-55:]}"
        )
    ratio = statistics.median(ratios)
    ok = ratio <= GOALS["rebuild"]
    verdicts.append(
        f"(a) rebuild / cold = {ratio:.3f}x [{min(ratios):.3f}-{max(ratios):.3f}] "
        f"(goal <= {GOALS['rebuild']}x): {'MET' if ok else 'NOT MET'}"
    )
    s = r["size"]
    print("\n(b) size: MB = 10^6 bytes, kB = 10^3 bytes")
    rows = [
        ["image layers above the base", mb(s["total"])],
        ["  the venv layer", mb(s["venv"])],
        ["  the bundle layer", mb(s["bundle"])],
        ["host venv, same wheelhouse, du -sb", mb(s["venv_bytes"])],
        ["the bundle's files", mb(s["bundle_bytes"])],
    ]
    print(table(["what", "size"], rows, "lr"))
    size_ratio = s["total"] / s["venv_bytes"]
    verdicts.append(
        f"(b) image above its base / host venv = {size_ratio:.3f}x (goal <= {GOALS['size']}x): "
        f"{'MET' if size_ratio <= GOALS['size'] else 'NOT MET'}"
    )
    starts = [x["serving_s"] for x in r["starts"]]
    print("\n(c) start to SERVING, s: median [min-max]")
    rows = [
        [
            "container: containers.run returns",
            fmt_range([x["run_call_s"] for x in r["starts"]], ".2f"),
        ],
        ["container: SERVING on the published port", fmt_range(starts, ".2f")],
        ["host process: modelwire serve (reference)", fmt_range(r["host_starts"], ".2f")],
    ]
    print(table(["from the start call until", "seconds"], rows, "lr"))
    median_start = statistics.median(starts)
    verdicts.append(
        f"(c) container start to SERVING = {median_start:.2f} s median (goal < "
        f"{GOALS['start_s']:g} s): {'MET' if median_start < GOALS['start_s'] else 'NOT MET'}"
    )
    print("\nverdicts:")
    for v in verdicts:
        print(f"  {v}")
    return verdicts

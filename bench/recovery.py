"""modelwire recovery benchmark: the iris chain under `modelwire run`, its models SIGKILLed.

    .venv/bin/python bench/recovery.py [--kills 3] [--callers 16] [--seconds 60] [--every 10]
                                       [--only a,b] [--json FILE] [--keep]
    .venv/bin/python bench/recovery.py --kills 1 --callers 4 --seconds 12 --every 4  # smoke

(a) Recovery. `blueprints/iris-chain.yaml` (scaler -> classifier -> labels, each a local
    `modelwire serve` process) under `modelwire run`; one caller calls the solution in a
    loop. Each model in turn, `--kills` times, once it has served for 6 s (so its restart
    is at once, not backed off): SIGKILL it, and measure from the kill to the solution's
    health reporting NOT_SERVING (detected), the restarted model's own start (from its
    spawn to SERVING, as the supervisor logs it), and the solution answering again (the
    first call started after the kill that succeeds). Goal: recovery <= 3 s, the model's
    start included.
(b) Under load. `--callers` threads, each on a connection of its own, each sending
    requests no other caller sends and checking each answer against its own request,
    for `--seconds`; every `--every` seconds one model (in turn) is SIGKILLed. Counted:
    calls, wrong answers, failed calls, and failed calls outside the recovery windows
    (a window runs from a kill to the first success after it, plus 0.5 s). Goal: 0 wrong
    answers, no failure outside a window; the failed calls are counted, not hidden.

The bundles are built from examples/iris_chain into the work dir at the start. Exit status
0 when every goal is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recovery_run import (
    MODELS,
    PY,
    ROOT,
    Callers,
    Run,
    not_serving_after,
    wait_until,
)

# ---------------------------------------------------------------- (a) and (b)


def part_a(run: Run, kills: int) -> list[dict[str, Any]]:
    rows = []
    callers = Callers(run.address, 1, pause=0.005, deadline=1.0)
    try:
        serving_since = {m: time.monotonic() for m in MODELS}
        for round_ in range(kills):
            for model in MODELS:
                time.sleep(max(0.0, 6.0 - (time.monotonic() - serving_since[model])))
                pid = run.models()[model]
                restarts = len(run.starts())
                stop, detected = threading.Event(), []
                t0 = time.monotonic()
                watcher = threading.Thread(
                    target=not_serving_after, args=(run.address, t0, stop, detected)
                )
                watcher.start()
                os.kill(pid, signal.SIGKILL)
                # the restart logged (it serves again), then a success after the failures
                wait_until(lambda n=restarts: len(run.starts()) > n, 60, "the restart's log line")
                wait_until(lambda t=t0: callers.first_ok_after(t) is not None, 60, "an answer")
                back = callers.first_ok_after(t0)
                assert back is not None
                stop.set()
                watcher.join()
                started = [s for m, s in run.starts()[restarts:] if m == model]
                serving_since[model] = time.monotonic()
                rows.append(
                    {
                        "round": round_,
                        "model": model,
                        "detected_s": detected[0] if detected else None,
                        "model_start_s": started[0] if started else None,
                        "recovery_s": back - t0,
                    }
                )
                print(
                    f"  (a) {model}: recovery {back - t0:.2f} s (its own start "
                    f"{started[0] if started else float('nan'):.2f} s)",
                    flush=True,
                )
    finally:
        callers.stop()
    return rows


def part_b(run: Run, n: int, seconds: float, every: float) -> dict[str, Any]:
    time.sleep(6.0)  # every model has served long enough to be restarted at once
    callers = Callers(run.address, n)
    kills: list[tuple[str, float]] = []
    t_start = time.monotonic()
    try:
        i = 0
        while True:
            next_kill = t_start + every * (i + 1)
            if next_kill >= t_start + seconds:
                break
            time.sleep(max(0.0, next_kill - time.monotonic()))
            model = MODELS[i % len(MODELS)]
            pid = run.models().get(model)
            if pid is not None:
                kills.append((model, time.monotonic()))
                os.kill(pid, signal.SIGKILL)
            i += 1
        time.sleep(max(0.0, t_start + seconds - time.monotonic()))
    finally:
        outcomes = callers.stop()
    windows = []
    for _, t0 in kills:
        failed_after = [o.ended for o in outcomes if not o.ok and o.ended >= t0]
        since = min(failed_after) if failed_after else t0
        ends = [o.ended for o in outcomes if o.ok and o.started > since]
        windows.append((t0, (min(ends) if ends else t0 + seconds) + 0.5))
    failed = [o for o in outcomes if not o.ok]
    outside = [o for o in failed if not any(o.ended >= a and o.started <= b for a, b in windows)]
    wall = max(o.ended for o in outcomes) - t_start
    return {
        "callers": n,
        "seconds": seconds,
        "kills": len(kills),
        "calls": len(outcomes),
        "calls_per_s": len(outcomes) / wall,
        "wrong": sum(1 for o in outcomes if o.ok and not o.correct),
        "failed": len(failed),
        "failed_outside_windows": len(outside),
        "windows_s": [round(b - 0.5 - a, 3) for a, b in windows],
    }


# ---------------------------------------------------------------- main


def prepare(work: Path) -> Path:
    print("  building the iris chain bundles (examples/build.py) ...", flush=True)
    out = work / "build"
    proc = subprocess.run(
        [
            PY,
            str(ROOT / "examples" / "build.py"),
            "--out",
            str(out),
            *(f"iris-{m}" for m in MODELS),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"examples/build.py failed:\n{proc.stdout}{proc.stderr}")
    text = (ROOT / "blueprints" / "iris-chain.yaml").read_text()
    blueprint = work / "iris-chain.yaml"
    blueprint.write_text(text.replace("../examples/build/", f"{out}/"))
    return blueprint


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s [{min(values):.2f}-{max(values):.2f}]"


def report(rows: list[dict[str, Any]], load: dict[str, Any] | None) -> bool:
    ok = True
    if rows:
        print("\n(a) SIGKILL of one model -> the solution answering again, median [min-max]")
        print("| model | kills | detected (NOT_SERVING) | the model's own start | recovery |")
        print("| --- | --- | --- | --- | --- |")
        for model in MODELS:
            mine = [r for r in rows if r["model"] == model]
            detected = [r["detected_s"] for r in mine if r["detected_s"] is not None]
            started = [r["model_start_s"] for r in mine if r["model_start_s"] is not None]
            print(
                f"| {model} | {len(mine)} | {_median(detected) if detected else '-'} | "
                f"{_median(started) if started else '-'} | "
                f"{_median([r['recovery_s'] for r in mine])} |"
            )
        worst = max(r["recovery_s"] for r in rows)
        met = worst <= 3.0
        ok &= met
        print(
            f"goal: recovery <= 3 s, the model's start included: {'met' if met else 'NOT met'}"
            f" (worst {worst:.2f} s)"
        )
    if load is not None:
        print(
            f"\n(b) {load['callers']} callers for {load['seconds']:g} s, a model SIGKILLed "
            f"{load['kills']} times"
        )
        print("| calls | calls/s | wrong answers | failed calls | failed outside the windows |")
        print("| --- | --- | --- | --- | --- |")
        print(
            f"| {load['calls']:,} | {load['calls_per_s']:,.0f} | {load['wrong']} | "
            f"{load['failed']:,} | {load['failed_outside_windows']} |"
        )
        windows = load["windows_s"]
        if windows:
            print(f"recovery windows: {_median(windows)}")
        met = load["wrong"] == 0 and load["failed_outside_windows"] == 0
        ok &= met
        print(
            "goal: 0 wrong answers, failed calls only inside the recovery windows: "
            + ("met" if met else "NOT met")
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kills", type=int, default=3, help="(a) kills of each model (default 3)")
    ap.add_argument("--callers", type=int, default=16, help="(b) callers (default 16)")
    ap.add_argument("--seconds", type=float, default=60.0, help="(b) duration (default 60)")
    ap.add_argument("--every", type=float, default=10.0, help="(b) s between kills (default 10)")
    ap.add_argument("--only", default="a,b", help="parts to run (default a,b)")
    ap.add_argument("--json", type=Path, help="write the rows to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (bundles, logs)")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="modelwire-recovery-"))
    print(f"modelwire recovery benchmark (work dir {work})", flush=True)
    ok = False
    try:
        blueprint = prepare(work)
        rows: list[dict[str, Any]] = []
        load = None
        if "a" in parts:
            run = Run(blueprint, work / "run-a.log")
            try:
                rows = part_a(run, args.kills)
            finally:
                run.stop()
        if "b" in parts:
            run = Run(blueprint, work / "run-b.log")
            try:
                load = part_b(run, args.callers, args.seconds, args.every)
            finally:
                run.stop()
        ok = report(rows, load)
        if args.json:
            args.json.write_text(
                json.dumps({"a": rows, "b": load, "args": vars(args)}, default=str)
            )
    finally:
        if args.keep or not ok:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

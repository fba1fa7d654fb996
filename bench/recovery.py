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
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from modelwire.errors import ServiceError
from modelwire.hosting.remote import health_status
from modelwire.runtime.client import connect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
LISTENING = "modelwire broker listening on "
MODELS = ("scaler", "classifier", "labels")
FLOWERS = {
    "setosa": (5.1, 3.5, 1.4, 0.2),
    "versicolor": (6.2, 2.9, 4.3, 1.3),
    "virginica": (7.7, 3.0, 6.1, 2.3),
}
NAMES = list(FLOWERS)
FIELDS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
_AGAIN = re.compile(r"model (\w+) serving again at \S+ \(pid \d+\), ([0-9.]+) s after its restart")


def request(caller: int, seq: int) -> tuple[dict[str, list[float]], list[str]]:
    """Request `seq` of `caller`: 1 to 4 flowers in an order of its own, and their species."""
    wanted = [NAMES[(caller + seq + i * (seq % 3 + 1)) % 3] for i in range(1 + caller % 4)]
    columns = zip(*(FLOWERS[s] for s in wanted), strict=True)
    return {k: list(v) for k, v in zip(FIELDS, columns, strict=True)}, wanted


# ---------------------------------------------------------------- the run


class Run:
    """`modelwire run` of the iris chain, its log kept, its models found by bundle name."""

    def __init__(self, blueprint: Path, log: Path) -> None:
        self.log_path = log
        self.log = open(log, "w")  # noqa: SIM115 -- open for the run's life
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
        self.proc = subprocess.Popen(
            [PY, "-m", "modelwire", "run", str(blueprint), "--port", "0", "--log-format", "json"],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(LISTENING):
            self.stop()
            raise RuntimeError(f"modelwire run did not start; see {log}")
        self.address = line[len(LISTENING) :].strip()

    def models(self) -> dict[str, int]:
        """The live model processes: model -> pid."""
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if int(fields[1]) != self.proc.pid or fields[0] == "Z":
                continue
            for arg in argv:
                name = Path(arg.decode(errors="replace")).name.removeprefix("iris-")
                if name in MODELS:
                    found[name] = int(entry)
        return found

    def starts(self) -> list[tuple[str, float]]:
        """(model, seconds from its spawn to SERVING) of every restart so far."""
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                message = json.loads(line).get("message", "")
            except ValueError:
                continue
            if m := _AGAIN.match(message):
                out.append((m.group(1), float(m.group(2))))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


@dataclass
class Outcome:
    caller: int
    started: float
    ended: float
    ok: bool
    correct: bool


class Callers:
    """`n` threads calling `classify` in a loop, each on a connection of its own."""

    def __init__(self, address: str, n: int, pause: float = 0.0, deadline: float = 2.0):
        self.address, self.pause, self.deadline = address, pause, deadline
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]
        for t in self._threads:
            t.start()

    def _run(self, caller: int) -> None:
        options = [("grpc.use_local_subchannel_pool", 1), ("bench.caller", caller)]
        channel = grpc.insecure_channel(self.address, options=options)
        client = connect(self.address, channel=channel, timeout=self.deadline)
        seq = 0
        try:
            while not self._stop.is_set():
                kwargs, wanted = request(caller, seq)
                t0 = time.monotonic()
                try:
                    got = list(client.classify(**kwargs).species)
                except ServiceError:
                    outcome = Outcome(caller, t0, time.monotonic(), False, False)
                else:
                    outcome = Outcome(caller, t0, time.monotonic(), True, got == wanted)
                with self._lock:
                    self.outcomes.append(outcome)
                seq += 1
                if self.pause:
                    self._stop.wait(self.pause)
        finally:
            channel.close()

    def first_ok_after(self, t: float) -> float | None:
        with self._lock:
            ends = [o.ended for o in self.outcomes if o.ok and o.started > t]
        return min(ends) if ends else None

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        return self.outcomes


def not_serving_after(address: str, t0: float, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        try:
            status = health_status(address, timeout=1.0)
        except ServiceError:
            status = "UNREACHABLE"
        if status != "SERVING":
            out.append(time.monotonic() - t0)
            return
        time.sleep(0.005)


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
                wait_until(lambda t=t0: callers.first_ok_after(t) is not None, 60, "an answer")
                back = callers.first_ok_after(t0)
                assert back is not None
                stop.set()
                watcher.join()
                wait_until(lambda n=restarts: len(run.starts()) > n, 30, "the restart's log line")
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
        ends = [o.ended for o in outcomes if o.ok and o.started > t0]
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

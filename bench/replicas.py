"""modelwire replicas benchmark: a CPU-bound model behind the broker, 1 vs 2 vs 3 replicas.

    .venv/bin/python bench/replicas.py [--replicas 1,2,3] [--callers 8] [--seconds 20]
                                       [--rounds 100000] [--json FILE]
    .venv/bin/python bench/replicas.py --seconds 3 --rounds 20000        # smoke

For each replica count, `modelwire run` serves a one-step blueprint over the CPU-bound
model of bench/cpu_model.py with `--replicas cpu=N`; `--callers` threads, each on a
connection of its own, call the solution in a loop for `--seconds` (after a 1 s warm-up)
and check every answer. Reported side by side: calls/s, its ratio to 1 replica, and the
busiest replica's share of the calls, read from the broker's per-replica metrics
(`modelwire_replica_requests_total`). Goals: the busiest share <= 60 % with 2 replicas,
<= 40 % with 3. The calls/s ratio is printed, not a goal: on 2 cores the broker and the
callers take CPU from the replicas, so it stays well under 2x.

Exit status 0 when every share goal is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
GOALS = {2: 0.60, 3: 0.40}  # the busiest replica's share, at most
BLUEPRINT = """
name: burner
models:
  cpu: {bundle: cpu}
methods:
  burn:
    steps:
      b: {call: cpu.burn, with: $input}
    output: b
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def expected(rounds: int) -> int:
    return sum(i * i % 7 for i in range(rounds))


def replica_calls(metrics_port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("modelwire_replica_requests_total{") and 'model="cpu"' in line:
            labels, value = line.rsplit(" ", 1)
            replica = labels.split('replica="', 1)[1].split('"', 1)[0]
            out[replica] = out.get(replica, 0) + float(value)
    return out


def callers(address: str, n: int, rounds: int, warmup: float, seconds: float) -> dict[str, Any]:
    from modelwire import connect

    want = expected(rounds)
    counts = [0] * n
    wrong = [0] * n
    failed = [0] * n
    start = time.monotonic() + warmup
    stop = start + seconds

    def loop(i: int) -> None:
        client = connect(address)
        try:
            while (now := time.monotonic()) < stop:
                try:
                    got = client.burn(rounds)
                except Exception:
                    failed[i] += 1 if now >= start else 0
                    continue
                if time.monotonic() >= start and now >= start:
                    counts[i] += 1
                    wrong[i] += got != want
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"calls": sum(counts), "wrong": sum(wrong), "failed": sum(failed)}


def one(bundle_dir: Path, replicas: int, a: argparse.Namespace) -> dict[str, Any]:
    port, metrics_port = free_port(), free_port()
    argv = [PY, "-m", "modelwire", "run", str(bundle_dir / "burner.yaml"), "--port", str(port)]
    argv += ["--metrics-port", str(metrics_port), "--replicas", f"cpu={replicas}"]
    argv += ["--log-format", "json", "--log-level", "warning"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise SystemExit(f"modelwire run did not start (exit {proc.wait()})")
        address = line.rsplit(" ", 1)[1].strip()
        before = replica_calls(metrics_port)
        got = callers(address, a.callers, a.rounds, 1.0, a.seconds)
        after = replica_calls(metrics_port)
    finally:
        proc.terminate()
        proc.wait(30)
    per = {r: after[r] - before.get(r, 0) for r in after}
    total = sum(per.values()) or 1
    return {
        "replicas": replicas,
        "calls_per_s": got["calls"] / a.seconds,
        "wrong": got["wrong"],
        "failed": got["failed"],
        "per_replica": dict(sorted(per.items())),
        "busiest_share": max(per.values()) / total if per else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--replicas", default="1,2,3", help="replica counts, comma-separated")
    ap.add_argument("--callers", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=100_000, help="work per call (~5 ms)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args(argv)
    counts = [int(x) for x in a.replicas.split(",")]
    with tempfile.TemporaryDirectory(prefix="mw-replicas-") as tmp:
        work = Path(tmp)
        subprocess.run(
            [PY, str(ROOT / "bench" / "cpu_model.py"), str(work / "cpu")],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (work / "burner.yaml").write_text(BLUEPRINT)
        rows = [one(work, n, a) for n in counts]
    base = next((r["calls_per_s"] for r in rows if r["replicas"] == 1), None)
    ok = True
    print(
        f"CPU-bound model ({a.rounds} rounds a call), {a.callers} callers, {a.seconds:g} s, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'replicas':>8}  {'calls/s':>8}  {'vs 1':>5}  {'busiest':>7}  {'goal':>6}  per replica")
    for r in rows:
        goal = GOALS.get(r["replicas"])
        met = goal is None or r["busiest_share"] <= goal
        bad = r["wrong"] or r["failed"]
        ok = ok and met and not bad
        ratio = f"{r['calls_per_s'] / base:.2f}x" if base else "-"
        target = f"<={goal:.0%}" if goal else "-"
        notes = "" if met else "  MISSED"
        if bad:
            notes += f"  wrong {r['wrong']} failed {r['failed']}"
        print(
            f"{r['replicas']:>8}  {r['calls_per_s']:>8.1f}  {ratio:>5}  "
            f"{r['busiest_share']:>6.0%}  {target:>6}  {r['per_replica']}{notes}"
        )
    if a.json is not None:
        a.json.write_text(
            json.dumps({"rows": rows, "args": vars(a) | {"json": str(a.json)}}, indent=2)
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

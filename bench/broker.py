"""modelwire broker benchmark: a blueprint through `modelwire run` against the client
calling the same models itself, side by side in one run.

    .venv/bin/python bench/broker.py [--reps 5] [--duration 2] [--only a,b,c] [--json FILE]
    .venv/bin/python bench/broker.py --from-json FILE     # print an earlier run's tables

(a) a 3-step chain of trivial models (add1(value: int) -> int, three `modelwire
    serve` processes of one bundle): one call to the broker against the client
    calling the three services in sequence itself (raw bytes, each reply sent on as
    it is), at 1 (sync client) and 16 (grpc.aio) calls in flight. Latency p50/p99,
    calls/s and their ratios; the broker process's CPU per call and per hop.
    Goal: broker p50 <= 1.6x the direct sequence at 1 call in flight.
(b) three parallel branches that each sleep 20 ms, feeding a fan-in step, through
    the broker, against one branch called directly. Goal: p50 <= 1.3x one branch.
(c) a 4 MB Tensor (1M float32) and a scale through a 2-step chain: the second
    step's request wire-identical to the first step's reply (forwarded as bytes),
    or declaring the scale as double where the first step sends a float
    (assignable, not wire-identical: transcoded by name); and the direct 2-call
    sequence for reference. The broker's /metrics (modelwire_edges_total{mode})
    confirms which edges were forwarded and which transcoded.

Every server and every client is its own process; each scenario starts its servers
afresh. Each repetition runs every scenario once, in a freshly shuffled order;
ratios are formed between scenarios of the same repetition and their median is
reported. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import inspect
import json
import math
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    MW_LISTENING,
    Proc,
    ProcessGroup,
    loadavg,
    machine_cpu_s,
    median,
    proc_cpu_s,
    run_client,
)

PY = sys.executable
CLIENT = str(HERE / "broker_clients.py")
MODELS = str(HERE / "broker_models.py")
BROKER_LISTENING = "modelwire broker listening on "
CONC = 16
GOAL_A, GOAL_B = 1.6, 1.3
NOISY_CORES = 0.25
_METRICS_LINE = re.compile(r"metrics at http://\S+?:(\d+)/metrics")
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')

# ---------------------------------------------------------------- scenarios

BLUEPRINTS = {
    "chain.yaml": """\
# bench/broker.py (a): three trivial steps in a row; every edge is wire-identical
name: chain3
models:
  m1: {bundle: bundles/add1}
  m2: {bundle: bundles/add1}
  m3: {bundle: bundles/add1}
methods:
  run:
    steps:
      s1: {call: m1.add1, with: $input}
      s2: {call: m2.add1, with: s1}
      s3: {call: m3.add1, with: s2}
    output: s3
""",
    "fanin.yaml": """\
# bench/broker.py (b): three 20 ms branches in parallel, then a fan-in step
name: fanin
models:
  b1: {bundle: bundles/slow}
  b2: {bundle: bundles/slow}
  b3: {bundle: bundles/slow}
  j: {bundle: bundles/join3}
methods:
  run:
    steps:
      r1: {call: b1.slow, with: $input}
      r2: {call: b2.slow, with: $input}
      r3: {call: b3.slow, with: $input}
      sum: {call: j.join3, with: {a: r1.value, b: r2.value, c: r3.value}}
    output: sum
""",
    "tensor-fwd.yaml": """\
# bench/broker.py (c): 4 MB Tensor; scale64's reply {x, double scale} is wire-identical
# to take's request {x, double scale}: forwarded as bytes
name: tensorfwd
models:
  p: {bundle: bundles/scale64}
  c: {bundle: bundles/take}
methods:
  run:
    steps:
      s1: {call: p.scale64, with: $input}
      s2: {call: c.take, with: s1}
    output: s2
""",
    "tensor-tx.yaml": """\
# bench/broker.py (c): 4 MB Tensor; scale32's reply {x, float scale} is assignable to
# take's request {x, double scale} (float -> double), not wire-identical: transcoded
name: tensortx
models:
  p: {bundle: bundles/scale32}
  c: {bundle: bundles/take}
methods:
  run:
    steps:
      s1: {call: p.scale32, with: $input}
      s2: {call: c.take, with: s1}
    output: s2
""",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    part: str
    payload: str  # broker_clients.py --payload
    conc: int = 1
    blueprint: str | None = None  # through the broker: this blueprint
    bundles: tuple[str, ...] = ()  # direct: these bundles, called in this order
    hops: int = 1  # model calls per call (broker: its steps)
    expect: int | None = None
    label: str = ""


def scenarios(parts: set[str]) -> list[Scenario]:
    out: list[Scenario] = []
    if "a" in parts:
        for c, tag in ((1, "seq"), (CONC, f"c{CONC}")):
            how = "sync client, 1 in flight" if c == 1 else f"grpc.aio, {c} in flight"
            out.append(
                Scenario(
                    f"chain/broker-{tag}",
                    "a",
                    "chain",
                    c,
                    "chain.yaml",
                    hops=3,
                    expect=4,
                    label=f"client -> broker -> 3 steps; {how}",
                )
            )
            out.append(
                Scenario(
                    f"chain/direct-{tag}",
                    "a",
                    "chain",
                    c,
                    bundles=("add1",) * 3,
                    hops=3,
                    expect=4,
                    label=f"client -> 3 models in sequence; {how}",
                )
            )
    if "b" in parts:
        out.append(
            Scenario(
                "fanin/broker",
                "b",
                "fanin",
                1,
                "fanin.yaml",
                hops=4,
                expect=6,
                label="client -> broker -> 3 x 20 ms in parallel -> fan-in",
            )
        )
        out.append(
            Scenario(
                "branch/direct",
                "b",
                "fanin",
                1,
                bundles=("slow",),
                hops=1,
                expect=2,
                label="client -> one 20 ms branch",
            )
        )
    if "c" in parts:
        out.append(
            Scenario(
                "tensor/broker-fwd",
                "c",
                "tensor",
                1,
                "tensor-fwd.yaml",
                hops=2,
                label="broker, 2 steps, s1 -> s2 forwarded",
            )
        )
        out.append(
            Scenario(
                "tensor/broker-tx",
                "c",
                "tensor",
                1,
                "tensor-tx.yaml",
                hops=2,
                label="broker, 2 steps, s1 -> s2 transcoded (float -> double)",
            )
        )
        out.append(
            Scenario(
                "tensor/direct",
                "c",
                "tensor",
                1,
                bundles=("scale64", "take"),
                hops=2,
                label="client -> scale64 -> take, reply bytes sent on",
            )
        )
    return out


# ---------------------------------------------------------------- preparation


def prepare(work: Path) -> None:
    log = work / "prepare.log"
    print("  dumping the bench models (bench/broker_models.py) ...", flush=True)
    with open(log, "ab") as lf:
        proc = subprocess.run(
            [PY, MODELS, str(work / "bundles")], stdout=lf, stderr=lf, cwd=str(ROOT), check=False
        )
    if proc.returncode != 0:
        raise RuntimeError(f"dumping bench/broker_models.py failed; see {log}")
    for name, text in BLUEPRINTS.items():
        (work / name).write_text(text)
        check = subprocess.run(
            [PY, "-m", "modelwire", "check", str(work / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise RuntimeError(f"modelwire check {name} failed:\n{check.stdout}{check.stderr}")


def broker_tunes_malloc() -> bool:
    """Whether `modelwire run` calls tune_malloc() (read from its source)."""
    import modelwire.broker.launch
    import modelwire.broker.service
    import modelwire.cli_blueprints

    mods = (modelwire.broker.launch, modelwire.broker.service, modelwire.cli_blueprints)
    return any("tune_malloc(" in inspect.getsource(m) for m in mods)


# ---------------------------------------------------------------- running


def _wait_metrics_port(p: Proc, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = _METRICS_LINE.search(p.err.read_text(errors="replace"))
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    raise RuntimeError(f"{p.label}: no 'metrics at' line in its log")


def scrape(port: int) -> dict[str, Any]:
    """The broker's edges by step and mode, and its solution calls, from /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    edges: dict[str, dict[str, int]] = {}
    calls = 0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels = m.group(1), dict(_LABEL.findall(m.group(2)))
        if name == "modelwire_edges_total":
            edges.setdefault(labels["step"], {})[labels["mode"]] = int(float(m.group(3)))
        elif name == "modelwire_requests_total" and labels.get("code") == "OK":
            calls += int(float(m.group(3)))
    return {"edges": edges, "solution_calls": calls}


# the command line the broker gives its models (modelwire.broker.launch.LocalModels)
SERVE_ARGS = [
    "--port",
    "0",
    "--host",
    "127.0.0.1",
    "--max-message-mb",
    "256",
    "--log-format",
    "json",
]


def spawn_broker(sc: Scenario, work: Path, group: ProcessGroup) -> Proc:
    assert sc.blueprint is not None
    argv = [PY, "-m", "modelwire", "run", str(work / sc.blueprint), "--port", "0"]
    argv += ["--metrics-port", "0", "--grace", "2", "--log-format", "json"]
    return group.spawn(argv, f"broker-{sc.name}")


def spawn_models(sc: Scenario, work: Path, group: ProcessGroup) -> list[Proc]:
    """All at once, like the broker; the caller waits for their addresses."""
    return [
        group.spawn(
            [PY, "-m", "modelwire", "serve", str(work / "bundles" / b), *SERVE_ARGS],
            f"{b}-{i + 1}",
        )
        for i, b in enumerate(sc.bundles)
    ]


def run_scenario(
    sc: Scenario, rep: int, work: Path, group: ProcessGroup, args: argparse.Namespace
) -> dict[str, Any]:
    broker: Proc | None = None
    models: list[Proc] = []
    metrics: dict[str, Any] = {}
    try:
        # assigned before waiting, so that the finally below stops them on any failure
        if sc.blueprint is not None:
            broker = spawn_broker(sc, work, group)
            targets = [group.wait_line(broker, BROKER_LISTENING, 180)]
            mport = _wait_metrics_port(broker, 10)
            broker.remember_descendants()  # its models, to stop them by PID if need be
        else:
            models = spawn_models(sc, work, group)
            targets = [group.wait_line(p, MW_LISTENING, 120) for p in models]
        argv = [PY, CLIENT, "--targets", ",".join(targets), "--payload", sc.payload]
        argv += ["--conc", str(sc.conc), "--warmup", str(args.warmup)]
        argv += ["--duration", str(args.duration)]
        if sc.expect is not None:
            argv += ["--expect", str(sc.expect)]

        def model_cpu() -> float:
            if broker is not None:
                return sum(broker.descendants_cpu_s().values())
            return sum(p.cpu_s() for p in models)

        b0 = proc_cpu_s(broker.pid) if broker else 0.0
        mod0 = model_cpu()
        m0, t0 = machine_cpu_s(), time.monotonic()
        res, _ = run_client(group, argv, f"client-{sc.name}", args.warmup + args.duration + 180)
        m1, t1 = machine_cpu_s(), time.monotonic()
        broker_cpu = (proc_cpu_s(broker.pid) - b0) if broker else 0.0
        models_cpu = model_cpu() - mod0
        if broker is not None:
            metrics = scrape(mport)
    finally:
        if broker is not None:
            group.stop(broker)
        for p in models:
            group.stop(p)
    n = res["n_total"]
    wall = t1 - t0
    res.update(
        rep=rep,
        scenario=sc.name,
        part=sc.part,
        hops=sc.hops,
        broker_cpu_s=broker_cpu,
        broker_cpu_us_per_call=broker_cpu / n * 1e6 if broker else math.nan,
        broker_cpu_us_per_hop=broker_cpu / n / sc.hops * 1e6 if broker else math.nan,
        models_cpu_s=models_cpu,
        models_cpu_us_per_call=models_cpu / n * 1e6,
        wall_s=wall,
        other_cores=max(0.0, (m1 - m0) - res["client_cpu_s"] - broker_cpu - models_cpu) / wall,
        **metrics,
    )
    return res


# ---------------------------------------------------------------- summary
# (Summary, fmt, fmt_range, table, versions: as in bench/runtime.py, which cannot be
# imported by name here: `runtime` is the modelwire.runtime package's directory)


class Summary:
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


def fmt_range(vals: list[float], spec: str = ",.0f", suffix: str = "") -> str:
    vals = [v for v in vals if v is not None and not math.isnan(v)]
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) == 1:
        return f"{m:{spec}}{suffix}"
    return f"{m:{spec}}{suffix} [{min(vals):{spec}}-{max(vals):{spec}}]"


def fmt(v: float, spec: str = ",.0f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:{spec}}"


def table(headers: list[str], rows: list[list[str]], align: str) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def versions() -> str:
    out = [f"Python {sys.version.split()[0]}"]
    for pkg in ("modelwire", "grpcio", "protobuf", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{pkg} {metadata.version(pkg)}")
    return ", ".join(out)


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
        vals = s.paired("chain/broker-seq", "chain/direct-seq", "lat_p50_us")
        if vals:
            m = statistics.median(vals)
            ok = round(m, 2) <= GOAL_A
            verdicts.append(
                f"Goal (a) broker <= {GOAL_A}x the direct sequential latency (p50, 1 in flight): "
                f"{'MET' if ok else 'NOT MET'} ({m:.2f}x [{min(vals):.2f}-{max(vals):.2f}], "
                f"{len(vals)} reps; broker {fmt(s.med('chain/broker-seq', 'lat_p50_us'))} us vs "
                f"direct {fmt(s.med('chain/direct-seq', 'lat_p50_us'))} us; broker CPU "
                f"{fmt(s.med('chain/broker-seq', 'broker_cpu_us_per_hop'))} us per hop)"
            )
        else:
            verdicts.append(f"Goal (a) broker <= {GOAL_A}x direct: NOT MEASURED")
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
        if vals:
            m = statistics.median(vals)
            ok = round(m, 2) <= GOAL_B
            verdicts.append(
                f"Goal (b) 3 parallel 20 ms branches + fan-in <= {GOAL_B}x one branch direct "
                f"(p50): {'MET' if ok else 'NOT MET'} ({m:.2f}x [{min(vals):.2f}-"
                f"{max(vals):.2f}], {len(vals)} reps; "
                f"{ms(s.med('fanin/broker', 'lat_p50_us')):.2f} ms vs "
                f"{ms(s.med('branch/direct', 'lat_p50_us')):.2f} ms)"
            )
        else:
            verdicts.append(f"Goal (b) fan-in <= {GOAL_B}x one branch: NOT MEASURED")
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
    if "a" in parts and s.has("chain/broker-seq"):
        ok, text = check_edges(s, "chain/broker-seq", "s2", "forwarded")
        print(
            f"\n  (a) chain edges from /metrics: s2 forwarded {text} -> "
            f"{'every edge forwarded' if ok else 'NOT all forwarded'}"
        )
    return verdicts


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--duration", type=float, default=2.0, help="measured window, s (default 2)")
    ap.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="warm-up before each window, s (default min(0.5, duration/2))",
    )
    ap.add_argument("--only", default="a,b,c", help="scenarios to run: any of a,b,c")
    ap.add_argument("--json", type=Path, default=None, help="write the raw rows here")
    ap.add_argument("--seed", type=int, default=None, help="seed of the shuffled orders")
    ap.add_argument(
        "--scratch",
        type=Path,
        default=Path("/tmp/modelwire-bench"),
        help="where each run's work dir is made (default %(default)s)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the work dir (bundles, logs)")
    ap.add_argument(
        "--from-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="run nothing: print the tables of a --json file again",
    )
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if not parts or parts - {"a", "b", "c"}:
        ap.error("--only takes a comma-separated subset of a,b,c")
    args.parts = parts
    if args.warmup is None:
        args.warmup = min(0.5, args.duration / 2)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 30)
    if args.reps < 1 or args.duration <= 0:
        ap.error("--reps must be >= 1 and --duration > 0")
    return args


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        return rerender(args.from_json)
    parts: set[str] = args.parts
    args.scratch.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix=f"broker-{stamp}-", dir=args.scratch))
    logdir = work / "logs"
    logdir.mkdir()
    group = ProcessGroup(logdir)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    rows: list[dict[str, Any]] = []
    interrupted = failed = False
    load0 = loadavg()
    t_start = time.monotonic()
    plan = scenarios(parts)
    print(
        f"modelwire broker benchmark: parts {','.join(sorted(parts))}, {args.reps} reps, "
        f"{args.duration:g} s windows after {args.warmup:g} s warm-up, seed {args.seed}"
    )
    print(f"work dir {work}")
    try:
        prepare(work)
        rng = random.Random(args.seed)
        for rep in range(args.reps):
            order = plan[:]
            rng.shuffle(order)
            print(f"  rep {rep + 1}/{args.reps}: ", end="", flush=True)
            for sc in order:
                try:
                    row = run_scenario(sc, rep, work, group, args)
                    print(".", end="", flush=True)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    failed = True
                    row = {"rep": rep, "scenario": sc.name, "part": sc.part, "error": str(exc)}
                    print("E", end="", flush=True)
                    print(f"\n    {sc.name} failed: {exc}", file=sys.stderr)
                rows.append(row)
            print(flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping every process started ...", file=sys.stderr)
    except Exception as exc:
        failed = True
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        group.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    tuned = broker_tunes_malloc()
    header = (
        f"{versions()}; {os.cpu_count()} CPUs; load average {load0:.2f} before, "
        f"{loadavg():.2f} after; {time.monotonic() - t_start:.0f} s"
    )
    labels = {sc.name: sc.label for sc in scenarios({"a", "b", "c"})}
    verdicts, ok = print_results(rows, parts, header, labels, tuned, interrupted)
    failed = failed or not ok
    if args.json:
        config = {
            k: (str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, set) else v)
            for k, v in vars(args).items()
        }
        args.json.write_text(
            json.dumps(
                {
                    "config": config,
                    "versions": versions(),
                    "header": header,
                    "broker_tunes_malloc": tuned,
                    "verdicts": verdicts,
                    "rows": rows,
                },
                indent=1,
            )
        )
        print(f"raw rows written to {args.json}")
    if failed or interrupted or args.keep:
        print(f"logs kept in {logdir}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 130 if interrupted else 1 if failed else 0


def print_results(
    rows: list[dict[str, Any]],
    parts: set[str],
    header: str,
    labels: dict[str, str],
    broker_tuned: bool,
    interrupted: bool = False,
) -> tuple[list[str], bool]:
    summary = Summary(rows)
    print(f"\n=== results{' (INTERRUPTED, partial)' if interrupted else ''} ===")
    print(header)
    print(
        "glibc malloc: modelwire.services.tune_malloc() is in effect in every client and in "
        "every model process (`modelwire serve` calls it, also when the broker starts it); "
        + (
            "the broker process (`modelwire run`) calls it too."
            if broker_tuned
            else "NOT in the broker process: `modelwire run` does not call it (measured as is)."
        )
    )
    print(
        "Model servers: `modelwire serve --server sync` (default, 8 threads), started with the "
        "broker's own command line. Clients send pre-encoded request bytes (identity "
        "serializers); the direct clients pass each reply on as it is. 'broker CPU' = the "
        "`modelwire run` process alone; 'models CPU' = its model processes (or the direct "
        "ones); per call = over every call served, warm-up included; per hop = per call / "
        "steps. 'other load' = CPU cores used by processes outside the benchmark while the "
        f"client ran (> {NOISY_CORES}: noisy)."
    )
    verdicts: list[str] = []
    ok = True
    try:
        verdicts = report(summary, parts, labels) if summary.rows else []
    except Exception:  # keep the raw rows even if the report has a bug
        traceback.print_exc()
        ok = False
    noisy = median(r["other_cores"] for r in summary.rows) if summary.rows else math.nan
    print()
    for v in verdicts:
        print(v)
    if not broker_tuned:
        print(
            "NOTE: the broker process runs with glibc's default malloc (`modelwire run` does not "
            "call tune_malloc()); this matters for (c)'s 4 MB messages."
        )
    if not math.isnan(noisy) and noisy > NOISY_CORES:
        print(
            f"WARNING: median other load {noisy:.2f} cores: the machine was shared; "
            "absolute numbers are low and ratios noisy."
        )
    if summary.errors:
        print(
            f"{len(summary.errors)} scenario runs failed (first: "
            f"{summary.errors[0]['scenario']}: {summary.errors[0]['error'][:300]})"
        )
    return verdicts, ok


def rerender(path: Path) -> int:
    data = json.loads(path.read_text())
    header = f"re-rendered from {path}: {data.get('header', data.get('versions', ''))}"
    labels = {sc.name: sc.label for sc in scenarios({"a", "b", "c"})}
    _, ok = print_results(
        data["rows"], set(data["config"]["parts"]), header, labels, data["broker_tunes_malloc"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

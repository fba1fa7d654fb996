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
(f) the same blueprints with `modelwire run --fuse` (issue 17: the models run inside
    the broker, Python values between steps), beside the unfused ones: the (a) chain
    against ONE direct add1 call (goal p50 <= 1.15x), the (b) fan-in against one
    branch (<= 1.1x), the (c) forwarded tensor chain against one direct scale64 call
    (<= 1.2x). Run with the parts they belong to (a, b, c).

Every server and every client is its own process; each scenario starts its servers
afresh. Each repetition runs every scenario once, in a freshly shuffled order;
ratios are formed between scenarios of the same repetition and their median is
reported. See bench/README.md.
"""

import argparse
import inspect
import json
import math
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _harness  # noqa: E402
from _common import MW_LISTENING, proc_cpu_s  # noqa: E402
from _procs import Proc, ProcessGroup  # noqa: E402
from broker_report import report  # noqa: E402
from broker_scenarios import BLUEPRINTS, Scenario, scenarios  # noqa: E402

PY = sys.executable
CLIENT = str(HERE / "broker_clients.py")
MODELS = str(HERE / "broker_models.py")
BROKER_LISTENING = "modelwire broker listening on "
_METRICS_LINE = re.compile(r"metrics at http://\S+?:(\d+)/metrics")
_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')

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
    import modelwire.cli.blueprints

    mods = (modelwire.broker.launch, modelwire.broker.service, modelwire.cli.blueprints)
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
    "--no-http",
    "--log-format",
    "json",
]


def spawn_broker(sc: Scenario, work: Path, group: ProcessGroup) -> Proc:
    assert sc.blueprint is not None
    argv = [PY, "-m", "modelwire", "run", str(work / sc.blueprint), "--port", "0"]
    argv += ["--http-port", "0"]  # the solution's HTTP face, on a free port
    argv += ["--metrics-port", "0", "--grace", "2", "--log-format", "json"]
    if sc.fuse:
        argv.append("--fuse")
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
        res, busy, wall = _harness.timed_client(
            group, argv, f"client-{sc.name}", args.warmup + args.duration + 180
        )
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
        other_cores=_harness.other_cores(busy, wall, res["client_cpu_s"], broker_cpu, models_cpu),
        **metrics,
    )
    return res


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = _harness.parser(__doc__)
    _harness.add_timed_options(ap, "where each run's work dir is made (default %(default)s)")
    _harness.add_keep(
        ap,
        "keep the work dir (bundles, logs)",
        "run nothing: print the tables of a --json file again",
    )
    args = _harness.parse(ap, argv, "a,b,c")
    _harness.check_windows(ap, args)
    return args


def versions() -> str:
    return _harness.versions("modelwire", "grpcio", "protobuf", "numpy")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        return rerender(args.from_json)
    parts: set[str] = args.parts
    run = _harness.Session(args, "broker")
    run.run(
        f"modelwire broker benchmark: parts {','.join(sorted(parts))}, {args.reps} reps, "
        f"{args.duration:g} s windows after {args.warmup:g} s warm-up, seed {args.seed}",
        lambda: prepare(run.work),
        scenarios(parts),
        lambda sc, rep, _: run_scenario(sc, rep, run.work, run.group, args),
        lambda sc: {"part": sc.part},
    )
    tuned = broker_tunes_malloc()
    header = run.header(versions())
    labels = {sc.name: sc.label for sc in scenarios({"a", "b", "c"})}
    verdicts, ok = print_results(run.rows, parts, header, labels, tuned, run.interrupted)
    run.failed = run.failed or not ok
    return run.finish(
        {
            "versions": versions(),
            "header": header,
            "broker_tunes_malloc": tuned,
            "verdicts": verdicts,
            "rows": run.rows,
        }
    )


def print_results(
    rows: list[dict[str, Any]],
    parts: set[str],
    header: str,
    labels: dict[str, str],
    broker_tuned: bool,
    interrupted: bool = False,
) -> tuple[list[str], bool]:
    preamble = [
        "glibc malloc: modelwire.hosting.process.tune_malloc() is in effect in every client and in "
        "every model process (`modelwire serve` calls it, also when the broker starts it); "
        + (
            "the broker process (`modelwire run`) calls it too."
            if broker_tuned
            else "NOT in the broker process: `modelwire run` does not call it (measured as is)."
        ),
        "Model servers: `modelwire serve --server sync` (default, 8 threads), started with the "
        "broker's own command line. Clients send pre-encoded request bytes (identity "
        "serializers); the direct clients pass each reply on as it is. 'broker CPU' = the "
        "`modelwire run` process alone; 'models CPU' = its model processes (or the direct "
        "ones); per call = over every call served, warm-up included; per hop = per call / "
        "steps. 'other load' = CPU cores used by processes outside the benchmark while the "
        f"client ran (> {_harness.NOISY_CORES}: noisy).",
    ]
    notes = (
        []
        if broker_tuned
        else [
            "NOTE: the broker process runs with glibc's default malloc (`modelwire run` does "
            "not call tune_malloc()); this matters for (c)'s 4 MB messages."
        ]
    )
    return _harness.print_results(
        rows,
        header,
        preamble,
        lambda s: report(s, parts, labels),
        notes=notes,
        interrupted=interrupted,
    )


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

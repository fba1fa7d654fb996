"""Adaptive batching benchmark: the iris model batched against itself unbatched and against
the Acumos runner, side by side in one run.

    .venv/bin/python bench/batching.py [--reps 5] [--duration 2] [--only a,b,c] [--json FILE]
    .venv/bin/python bench/batching.py --from-json FILE     # print an earlier run's tables

The models: examples/iris/model.py (RandomForest, 10 trees, one predict() per call) and
examples/iris/batched.py (the same forest and the same proto, `@modelwire.batched(
max_batch_size=64)`: one predict() per batch). Every request is one row of 4 floats.

(a) 8 concurrent Python clients: modelwire batched (`--server sync|aio`, one grpc.aio
    client process with 8 calls in flight on one channel; with `--workers 2`, on 8
    channels, so that the kernel spreads them) against acumos-model-runner
    0.2.6 (1 and 2 gunicorn workers, 8 client threads; bench/acumos_env.py), and modelwire
    unbatched for reference. Goal: batched >= 2x the Acumos runner's best calls/s.
(b) h2load (native, HTTP/2, one connection, 64 streams in flight) against modelwire
    batched and unbatched, per server kind. Goal: batched >= 3x unbatched calls/s.
(c) 1 caller (a sync stub, one call after another): batched against unbatched p50
    latency, per server kind. Goal: batched p50 <= 1.1x unbatched.

Every server and client is its own process; every modelwire server serves --metrics-port,
and after each client the batch sizes are read from its `modelwire_batch_size` histogram
(over warm-up and window: a fresh server per scenario) and its `modelwire_requests_total`,
which must count no failed call. Each repetition runs every scenario once in a freshly
shuffled order; ratios are formed within a repetition and their median is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _harness  # noqa: E402
import acumos_env  # noqa: E402
from _common import MW_LISTENING, machine_cpu_s  # noqa: E402
from _procs import Proc, ProcessGroup  # noqa: E402
from batching_report import report  # noqa: E402

PY = sys.executable
CLIENTS = str(HERE / "clients.py")
SERVICE_PATH = "/modelwire.models.iris.v1.IrisService/Classify"
KINDS = ("sync", "aio")
CONC_A, STREAMS_B = 8, 64


@dataclass(frozen=True)
class Scenario:
    name: str  # '<server key>/<load>', e.g. 'mwb-aio/c8', 'mw-sync/h2-m64', 'acumos-w2/c8'
    server: str  # 'mw-<kind>' unbatched, 'mwb-<kind>' batched, 'acumos-w<N>'
    load: str  # 'c8' (Python clients), 'h2-m64' (h2load), 'seq' (one caller)


def scenarios(parts: set[str], acumos_workers: list[int], mw_workers: list[int]) -> list[Scenario]:
    out = []
    if "a" in parts:
        c = f"c{CONC_A}"
        for w in mw_workers:  # with N > 1 workers: one channel per caller, to spread them
            key = "" if w == 1 else f"-w{w}"
            load = c if w == 1 else f"{c}-{CONC_A}ch"
            out += [Scenario(f"mwb-{k}{key}/{load}", f"mwb-{k}{key}", load) for k in KINDS]
        out.append(Scenario(f"mw-aio/{c}", "mw-aio", c))
        out += [Scenario(f"acumos-w{w}/{c}", f"acumos-w{w}", c) for w in acumos_workers]
    for part, load in (("b", f"h2-m{STREAMS_B}"), ("c", "seq")):
        if part in parts:
            out += [
                Scenario(f"{i}-{k}/{load}", f"{i}-{k}", load) for k in KINDS for i in ("mw", "mwb")
            ]
    return out


def split_key(key: str) -> tuple[str, str, int]:
    """'mwb-aio-w2' -> ('mwb', 'aio', 2); 'acumos-w1' -> ('acumos', '', 1)."""
    m = re.fullmatch(r"(.*?)(?:-w(\d+))?", key)
    assert m is not None
    impl, _, kind = m.group(1).partition("-")
    return impl, kind, int(m.group(2) or 1)


# ---------------------------------------------------------------- preparation


@dataclass
class Prepared:
    work: Path
    bundles: dict[str, Path]  # 'mw' / 'mwb' -> bundle
    stubs: Path
    grpc_request: Path  # one length-prefixed ClassifyRequest, for h2load
    acumos_venv: Path | None = None
    acumos_model: Path | None = None


def _run(argv: list[str], log: Path, what: str) -> None:
    with open(log, "ab") as lf:
        if subprocess.run(argv, stdout=lf, stderr=lf, check=False, cwd=ROOT).returncode:
            raise RuntimeError(f"{what} failed; see {log}")


def prepare(parts: set[str], args: argparse.Namespace, work: Path) -> Prepared:
    log = work / "prepare.log"
    print("  dumping examples/iris/model.py and examples/iris/batched.py ...", flush=True)
    bundles = {"mw": work / "iris", "mwb": work / "iris-batched"}
    _run([PY, "examples/iris/model.py", str(bundles["mw"])], log, "dumping the iris model")
    _run([PY, "examples/iris/batched.py", str(bundles["mwb"])], log, "dumping the batched iris")
    proto = (bundles["mw"] / "model.proto").read_bytes()
    if proto != (bundles["mwb"] / "model.proto").read_bytes():
        raise RuntimeError("the batched iris bundle's model.proto differs from the iris one")
    stubs = work / "stubs"
    _run([PY, "-m", "modelwire", "stubs", str(bundles["mw"]), "-o", str(stubs)], log, "stubs")
    message = acumos_env.iris_request_pb()  # ClassifyRequest's fields 1-4, one row
    request = work / "classify.grpc"
    request.write_bytes(b"\x00" + struct.pack(">I", len(message)) + message)
    prep = Prepared(work, bundles, stubs, request)
    if "a" in parts:
        print(f"  acumos venv under {args.scratch} (reused when present) ...", flush=True)
        alog = args.scratch / "acumos-setup.log"
        prep.acumos_venv = acumos_env.ensure_venv(args.scratch, args.py39, alog)
        prep.acumos_model = acumos_env.ensure_dump(args.scratch, prep.acumos_venv, alog)
    if "b" in parts and not shutil.which("h2load"):
        raise RuntimeError("part (b) needs h2load (apt-get install nghttp2-client)")
    return prep


# ---------------------------------------------------------------- servers


def _metrics_port(p: Proc) -> int:
    for line in p.err.read_text(errors="replace").splitlines():
        if '"metrics_port"' in line:
            return int(json.loads(line)["metrics_port"])
    raise RuntimeError(f"{p.label} logged no metrics port:\n{p.tail()}")


def start_server(
    sc: Scenario, prep: Prepared, group: ProcessGroup, args: argparse.Namespace
) -> tuple[Proc, str, int | None]:
    """The scenario's server, its target (host:port or URL) and its metrics port."""
    impl, kind, workers = split_key(sc.server)
    if impl == "acumos":
        assert prep.acumos_venv is not None and prep.acumos_model is not None
        port = acumos_env.free_port()
        argv = acumos_env.runner_argv(prep.acumos_venv, prep.acumos_model, port, workers)
        p = group.spawn(argv, sc.server, env=acumos_env.venv_env(prep.acumos_venv))
        acumos_env.wait_ready(port, p.alive, 120)
        acumos_env.wait_workers_idle(p.pid, workers, p.alive, 120)
        p.remember_descendants()
        return p, f"http://127.0.0.1:{port}{acumos_env.METHOD_PATH}", None
    threads = args.batched_threads if impl == "mwb" else args.threads
    argv = [PY, "-m", "modelwire", "serve", str(prep.bundles[impl]), "--port", "0"]
    argv += ["--server", kind, "--threads", str(threads), "--metrics-port", "0"]
    if workers > 1:  # the supervisor announces the port once every worker is SERVING
        argv += ["--workers", str(workers)]
    p = group.spawn([*argv, "--log-format", "json"], sc.server)
    address = group.wait_line(p, MW_LISTENING, 90)
    return p, address, _metrics_port(p)


def scrape(port: int) -> dict[str, float]:
    """The model's batch and request counters from a server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"(modelwire_\w+)\{(.*)\} (\S+)$", line)
        if not m or 'method="classify"' not in m.group(2):
            continue
        name, labels, value = m.groups()
        if name == "modelwire_requests_total":
            code = re.search(r'code="(\w+)"', labels)
            # h2load resets the streams still in flight when it stops: those are CANCELLED
            key = {"OK": "ok_calls", "CANCELLED": "cancelled_calls"}.get(
                code.group(1) if code else "", "failed_calls"
            )
            out[key] = out.get(key, 0.0) + float(value)
        elif name in ("modelwire_batch_size_sum", "modelwire_batch_size_count"):
            out[name.removeprefix("modelwire_")] = float(value)
        elif name == "modelwire_batch_size_bucket":
            le = re.search(r'le="([^"]+)"', labels)
            assert le is not None
            out[f"batch_le_{le.group(1)}"] = float(value)
    return out


def batch_median(m: dict[str, float]) -> float:
    """The upper bound of the histogram bucket that holds the median batch (nan: none ran)."""
    total = m.get("batch_size_count", 0.0)
    buckets = sorted(
        (float(k.removeprefix("batch_le_")), v) for k, v in m.items() if k.startswith("batch_le_")
    )
    return next((le for le, count in buckets if total and count >= total / 2), math.nan)


# ---------------------------------------------------------------- clients


def h2load(prep: Prepared, address: str, args: argparse.Namespace) -> dict[str, Any]:
    argv = ["h2load", "-t", "1", "-c", "1", "-m", str(STREAMS_B)]
    argv += [
        "-D",
        f"{int(args.duration * 1000)}ms",
        "--warm-up-time",
        f"{int(args.warmup * 1000)}ms",
    ]
    argv += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
    argv += ["-d", str(prep.grpc_request), f"http://{address}{SERVICE_PATH}"]
    out = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=args.duration + args.warmup + 60
    )
    text = out.stdout
    rate = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", text)
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", text)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", text)
    if not rate or not done or int(done.group(2)) == 0:
        raise RuntimeError(f"h2load: {text[-400:]}{out.stderr[-400:]}")
    scale = {"us": 1.0, "ms": 1e3, "s": 1e6}
    return {
        "calls_per_s": float(rate.group(2)),
        "n": int(done.group(1)),
        "lat_mean_us": float(mean.group(1)) * scale[mean.group(2)] if mean else math.nan,
    }


def python_client(
    sc: Scenario, prep: Prepared, target: str, group: ProcessGroup, args: argparse.Namespace
) -> dict[str, Any]:
    # every client runs on modelwire's Python, the HTTP one too (as in bench/runtime.py)
    if sc.server.startswith("acumos"):
        argv = [PY, CLIENTS, "http-conc", "--url", target, "--conc", str(CONC_A)]
    elif sc.load == "seq":
        argv = [PY, CLIENTS, "iris-seq", "--target", target, "--stubs", str(prep.stubs)]
    else:
        argv = [PY, CLIENTS, "iris-aio", "--target", target, "--stubs", str(prep.stubs)]
        argv += ["--conc", str(CONC_A)]
        if sc.load.endswith("ch"):
            argv += ["--channels", str(CONC_A)]
    argv += ["--warmup", str(args.warmup), "--duration", str(args.duration)]
    res, busy, wall = _harness.timed_client(
        group, argv, f"client-{sc.name}", args.warmup + args.duration + 180
    )
    res["_busy"], res["_wall"] = busy, wall
    return res


def run_scenario(
    sc: Scenario, rep: int, prep: Prepared, group: ProcessGroup, args: argparse.Namespace
) -> dict[str, Any]:
    server, target, metrics_port = start_server(sc, prep, group, args)
    try:
        cpu0 = server.cpu_s()
        if sc.load.startswith("h2"):
            m0, t0 = machine_cpu_s(), time.monotonic()
            res = h2load(prep, target, args)
            busy, wall = machine_cpu_s() - m0, time.monotonic() - t0
            client_cpu = 0.0  # h2load's own CPU counts as other load (it is small)
        else:
            res = python_client(sc, prep, target, group, args)
            busy, wall, client_cpu = res.pop("_busy"), res.pop("_wall"), res["client_cpu_s"]
        srv_cpu = server.cpu_s() - cpu0
        metrics = scrape(metrics_port) if metrics_port is not None else {}
    finally:
        group.stop(server)
    if res.get("errors") or metrics.get("failed_calls"):
        raise RuntimeError(
            f"calls failed: {res.get('errors') or 0} seen by the client, "
            f"{metrics.get('failed_calls', 0):.0f} counted by the server"
        )
    calls = metrics.get("ok_calls") or res.get("n_total") or res["n"]
    res.update(
        rep=rep,
        scenario=sc.name,
        server=sc.server,
        server_cpu_us_per_call=srv_cpu / calls * 1e6 if calls else math.nan,
        other_cores=_harness.other_cores(busy, wall, client_cpu, srv_cpu),
        batch_mean=(metrics["batch_size_sum"] / metrics["batch_size_count"])
        if metrics.get("batch_size_count")
        else math.nan,
        batch_p50_le=batch_median(metrics),
        batches=metrics.get("batch_size_count", math.nan),
        cancelled=metrics.get("cancelled_calls", 0.0),
    )
    return res


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = _harness.parser(__doc__)
    _harness.add_timed_options(
        ap, "cache for the acumos venv, and the work dir (default %(default)s)"
    )
    ap.add_argument("--py39", default=None, help="Python 3.9 for the acumos venv")
    ap.add_argument(
        "--workers", default="1,2", help="(a) acumos gunicorn worker counts (default 1,2)"
    )
    ap.add_argument(
        "--mw-workers",
        default="1,2",
        help="(a) batched `serve --workers` counts (default 1,2; N > 1 with 8 channels)",
    )
    ap.add_argument("--threads", type=int, default=8, help="serve --threads, unbatched (default 8)")
    ap.add_argument(
        "--batched-threads",
        type=int,
        default=64,
        help="serve --threads, batched (default 64: a sync server's batch is at most its threads)",
    )

    _harness.add_keep(
        ap, "keep the work dir (bundles, logs)", "print the tables of a --json file again"
    )
    args = _harness.parse(ap, argv, "a,b,c")
    _harness.check_windows(ap, args)
    args.acumos_workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    args.modelwire_workers = sorted({int(w) for w in args.mw_workers.split(",") if w.strip()})
    return args


def versions() -> str:
    return _harness.versions("modelwire", "grpcio", "protobuf", "numpy", "scikit-learn")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
        _harness.print_results(
            data["rows"],
            f"re-rendered from {args.from_json}",
            [],
            lambda s: report(s, set(data["config"]["parts"])),
        )
        return 0
    run = _harness.Session(args, "batching")
    run.run(
        f"modelwire batching benchmark: parts {','.join(sorted(args.parts))}, {args.reps} reps, "
        f"{args.duration:g} s windows after {args.warmup:g} s warm-up, seed {args.seed}",
        lambda: prepare(args.parts, args, run.work),
        scenarios(args.parts, args.acumos_workers, args.modelwire_workers),
        lambda sc, rep, prep: run_scenario(sc, rep, prep, run.group, args),
        lambda sc: {"server": sc.server},
    )
    preamble = [
        f"modelwire servers: --threads {args.threads} unbatched, {args.batched_threads} "
        "batched (a sync server's batch holds at most its threads); batched = "
        "examples/iris/batched.py "
        "(max_batch_size=64, max_delay_ms=0). Batch sizes from each server's "
        "modelwire_batch_size histogram, warm-up included. 'other load' = CPU cores used "
        f"outside the benchmark (> {_harness.NOISY_CORES}: noisy)."
    ]
    verdicts, ok = _harness.print_results(
        run.rows,
        run.header(versions()),
        preamble,
        lambda s: report(s, args.parts),
        interrupted=run.interrupted,
    )
    run.failed = run.failed or not ok
    return run.finish({"versions": versions(), "verdicts": verdicts, "rows": run.rows})


if __name__ == "__main__":
    sys.exit(main())

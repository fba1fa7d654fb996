"""modelwire runtime benchmark: modelwire against its baselines, side by side in one run.

    .venv/bin/python bench/runtime.py [--reps 5] [--duration 2] [--only a,b,c] [--json FILE]
    .venv/bin/python bench/runtime.py --from-json FILE     # print an earlier run's tables

(a) iris RandomForest(n_estimators=10), 1 row of 4 floats: `modelwire serve --server
    sync|aio` against a hand-written grpcio server (same generated proto, same
    function, same decode -> NamedTuple -> classify -> encode work), sync vs sync and
    aio vs aio; a sequential client (sync stub) and 16 calls in flight (grpc.aio,
    one channel). Goal: modelwire >= 0.9x the hand-written calls/s.
(b) a 1M-element float32 array (4 MB) echoed through a modelwire Tensor method
    (`modelwire.connect`) against a bare grpcio echo of the same bytes (generic
    handler, identity serializers) and numpy.copy in-process. Goal: <= 1.3x the raw
    echo's time per call.
(c) the same model under acumos-model-runner 0.2.6 (own Python 3.9 venv, HTTP
    protobuf endpoint, one connection per request; 1 and 2 gunicorn workers) with 1
    and 8 client threads, against modelwire at 1 and 8 in flight: `--server
    sync|aio`, 1 worker on one channel, and `--workers 2` with 8 channels (one per
    caller) at c8. Each side's best configuration, per repetition, is compared.
    Goal: >= 2x calls/s. In-process runs of the same work (no server) show where the
    server CPU goes.

Every server and every client is its own process. Each repetition runs every
scenario once, in a freshly shuffled order; ratios are formed between scenarios of
the same repetition and their median is reported. See bench/README.md.
"""

import argparse
import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _harness  # noqa: E402
import acumos_env  # noqa: E402
from _common import MW_LISTENING, PORT_LINE  # noqa: E402
from _procs import Proc, ProcessGroup  # noqa: E402
from runtime_report import report  # noqa: E402
from runtime_scenarios import Scenario, scenarios, split_key  # noqa: E402

PY = sys.executable
SERVERS = str(HERE / "servers.py")
CLIENTS = str(HERE / "clients.py")


# ---------------------------------------------------------------- preparation


@dataclass
class Prepared:
    work: Path
    iris_bundle: Path | None = None
    stubs: Path | None = None
    echo_bundle: Path | None = None
    acumos_venv: Path | None = None
    acumos_model: Path | None = None
    notes: list[str] = field(default_factory=list)


def _run(argv: list[str], log: Path, what: str, **kw: Any) -> None:
    with open(log, "ab") as lf:
        proc = subprocess.run(argv, stdout=lf, stderr=lf, check=False, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}); see {log}")


def prepare(parts: set[str], args: argparse.Namespace, work: Path) -> Prepared:
    prep = Prepared(work)
    log = work / "prepare.log"
    if parts & {"a", "c"}:
        print("  dumping the iris bundle (examples/iris/model.py) ...", flush=True)
        prep.iris_bundle = work / "iris"
        _run(
            [PY, str(ROOT / "examples" / "iris" / "model.py"), str(prep.iris_bundle)],
            log,
            "dumping examples/iris/model.py",
            cwd=str(ROOT),
        )
        # the hand-written server and both clients use stubs compiled by grpc_tools
        # from the bundle's own model.proto
        prep.stubs = work / "stubs"
        prep.stubs.mkdir()
        proto_dir = work / "proto"
        proto_dir.mkdir()
        shutil.copy(prep.iris_bundle / "model.proto", proto_dir / "model.proto")
        import grpc_tools

        include = Path(grpc_tools.__file__).parent / "_proto"
        _run(
            [
                PY,
                "-m",
                "grpc_tools.protoc",
                f"-I{proto_dir}",
                f"-I{include}",
                f"--python_out={prep.stubs}",
                f"--grpc_python_out={prep.stubs}",
                "model.proto",
            ],
            log,
            "grpc_tools.protoc on the iris bundle's model.proto",
        )
    if "b" in parts:
        print("  dumping the Tensor echo bundle (bench/echo_model.py) ...", flush=True)
        prep.echo_bundle = work / "echo"
        _run(
            [PY, str(HERE / "echo_model.py"), str(prep.echo_bundle)],
            log,
            "dumping bench/echo_model.py",
            cwd=str(ROOT),
        )
    if "c" in parts:
        print(f"  acumos venv under {args.scratch} (reused when present) ...", flush=True)
        alog = args.scratch / "acumos-setup.log"
        prep.acumos_venv = acumos_env.ensure_venv(args.scratch, args.py39, alog)
        prep.acumos_model = acumos_env.ensure_dump(args.scratch, prep.acumos_venv, alog)
    return prep


# ---------------------------------------------------------------- running


def start_server(
    key: str, prep: Prepared, group: ProcessGroup, args: argparse.Namespace
) -> tuple[Proc, str]:
    """Start the server named `key`; return it and its target (host:port or URL)."""
    impl, kind, workers = split_key(key)
    if impl in ("mw", "mwecho"):
        bundle = prep.iris_bundle if impl == "mw" else prep.echo_bundle
        argv = [PY, "-m", "modelwire", "serve", str(bundle), "--port", "0", "--server", kind]
        argv += ["--http-port", "0"]  # the HTTP face on, as `modelwire serve` runs by default
        if workers > 1:  # the supervisor announces the port once every worker is SERVING
            argv += ["--workers", str(workers)]
        p = group.spawn(argv, key)
        return p, group.wait_line(p, MW_LISTENING, 90)
    if impl == "hw":
        argv = [SERVERS, "iris", "--kind", kind, "--bundle", str(prep.iris_bundle)]
        p = group.spawn([PY, *argv, "--stubs", str(prep.stubs)], key)
        return p, f"127.0.0.1:{group.wait_line(p, PORT_LINE, 90)}"
    if impl == "raw":
        p = group.spawn([PY, SERVERS, "echo", "--kind", kind], key)
        return p, f"127.0.0.1:{group.wait_line(p, PORT_LINE, 90)}"
    if impl == "acumos":
        assert prep.acumos_venv is not None and prep.acumos_model is not None
        for attempt in range(3):  # the free port may be taken before gunicorn binds it
            port = acumos_env.free_port()
            argv = acumos_env.runner_argv(prep.acumos_venv, prep.acumos_model, port, workers)
            p = group.spawn(argv, key, env=acumos_env.venv_env(prep.acumos_venv))
            try:
                acumos_env.wait_ready(port, p.alive, 120)
                # one worker answering is not all of them: each gunicorn worker loads
                # the model after the fork (no preload); wait until all are idle
                acumos_env.wait_workers_idle(p.pid, workers, p.alive, 120)
            except RuntimeError:
                died_by_itself = not p.alive()
                group.stop(p)
                if attempt == 2 or not died_by_itself:
                    raise
                continue
            p.remember_descendants()
            return p, f"http://127.0.0.1:{port}{acumos_env.METHOD_PATH}"
    raise ValueError(key)


def run_scenario(
    sc: Scenario, rep: int, prep: Prepared, group: ProcessGroup, args: argparse.Namespace
) -> dict[str, Any]:
    server: Proc | None = None
    target = ""
    try:
        if sc.server is not None:
            server, target = start_server(sc.server, prep, group, args)
        python, env = PY, None
        if sc.venv == "acumos":
            assert prep.acumos_venv is not None
            python, env = (
                str(prep.acumos_venv / "bin" / "python"),
                acumos_env.venv_env(prep.acumos_venv),
            )
        argv = [python, CLIENTS, sc.client, "--warmup", str(args.warmup)]
        argv += ["--duration", str(args.duration), "--conc", str(sc.conc)]
        if sc.channels > 1:
            argv += ["--channels", str(sc.channels)]
        if sc.client.startswith("http"):
            argv += ["--url", target]
        elif target:
            argv += ["--target", target]
        if sc.client.startswith("iris"):
            argv += ["--stubs", str(prep.stubs)]
        if sc.client in ("model-inproc", "codec-inproc"):
            argv += ["--bundle", str(prep.iris_bundle)]
        if sc.client == "acumos-inproc":
            argv += ["--model", str(prep.acumos_model)]
        srv_cpu0 = server.cpu_s() if server else 0.0
        kids0 = server.descendants_cpu_s() if server else {}
        res, busy, wall = _harness.timed_client(
            group, argv, f"client-{sc.name}", args.warmup + args.duration + 180, env=env
        )
        srv_cpu = (server.cpu_s() - srv_cpu0) if server else 0.0
        # CPU of each worker process (multi-worker modelwire: the supervisor's children;
        # gunicorn: the master's), to see how the connections were spread
        kids1 = server.descendants_cpu_s() if server else {}
        worker_cpu = sorted((kids1[k] - kids0.get(k, 0.0) for k in kids1), reverse=True)
    finally:
        if server is not None:
            group.stop(server)
    if res.get("errors"):
        raise RuntimeError(f"{res['errors']} calls failed, first: {res.get('first_error')}")
    res.update(
        rep=rep,
        scenario=sc.name,
        server=sc.server,
        server_cpu_s=srv_cpu,
        server_cpu_us_per_call=srv_cpu / res["n_total"] * 1e6 if res["n_total"] else math.nan,
        wall_s=wall,
        # CPU used by everything else on the machine while the client ran, in cores
        other_cores=_harness.other_cores(busy, wall, res["client_cpu_s"], srv_cpu),
        worker_cpu_s=worker_cpu,
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
        "--workers",
        type=_int_list,
        default=[1, 2],
        metavar="N[,N...]",
        help="(c) acumos gunicorn worker counts to run (default 1,2)",
    )
    ap.add_argument(
        "--mw-workers",
        type=_int_list,
        default=[1, 2],
        metavar="N[,N...]",
        help="(c) `modelwire serve --workers` counts to run (default 1,2)",
    )
    _harness.add_keep(
        ap,
        "keep the work dir (bundles, logs)",
        "run nothing: print the tables of a --json file again",
    )
    args = _harness.parse(ap, argv, "a,b,c")
    _harness.check_windows(ap, args)
    return args


def _int_list(text: str) -> list[int]:
    try:
        vals = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,...: {text!r}") from None
    if not vals or vals[0] < 1:
        raise argparse.ArgumentTypeError(f"expected worker counts >= 1: {text!r}")
    return vals


def versions() -> str:
    return _harness.versions("modelwire", "grpcio", "protobuf", "numpy", "scikit-learn")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        return rerender(args.from_json)
    parts: set[str] = args.parts
    run = _harness.Session(args, "run")
    run.run(
        f"modelwire runtime benchmark: parts {','.join(sorted(parts))}, {args.reps} reps, "
        f"{args.duration:g} s windows after {args.warmup:g} s warm-up, seed {args.seed}",
        lambda: prepare(parts, args, run.work),
        scenarios(parts, args.workers, args.mw_workers),
        lambda sc, rep, prep: run_scenario(sc, rep, prep, run.group, args),
        lambda sc: {"server": sc.server},
    )
    header = run.header(versions())
    verdicts, report_ok = print_results(run.rows, args, parts, header, run.interrupted)
    run.failed = run.failed or not report_ok
    return run.finish({"versions": versions(), "verdicts": verdicts, "rows": run.rows})


def print_results(
    rows: list[dict[str, Any]],
    args: argparse.Namespace,
    parts: set[str],
    header: str,
    interrupted: bool = False,
) -> tuple[list[str], bool]:
    """Print the tables and verdicts; return the verdicts and whether the report worked."""
    preamble = [
        "glibc malloc: modelwire.hosting.process.tune_malloc() (mmap threshold 256 MiB, trim "
        "threshold 512 MiB) is in effect in every modelwire server (`modelwire serve` calls "
        "it), every hand-written and raw-echo server, and every client process including "
        "numpy.copy; not in the acumos runner (1-row messages only).",
        f"Hand-written sync servers use ThreadPoolExecutor({_default_threads()}), like "
        "`modelwire serve --server sync` by default. 'other load' = CPU cores used by "
        "processes outside the benchmark during the client's run "
        f"(> {_harness.NOISY_CORES}: noisy).",
    ]
    return _harness.print_results(
        rows, header, preamble, lambda s: report(s, args, parts), interrupted=interrupted
    )


def rerender(path: Path) -> int:
    """--from-json: print the tables of an earlier run again."""
    data = json.loads(path.read_text())
    cfg = data["config"]
    workers = cfg.get("workers", [1])
    rows = data["rows"]
    if isinstance(workers, int):  # a file from before the multi-worker rows of (c)
        workers = [workers]
        for r in rows:
            if r.get("server") == "acumos":
                r["server"] = f"acumos-w{workers[0]}"
                r["scenario"] = r["scenario"].replace("acumos/", f"acumos-w{workers[0]}/", 1)
    args = argparse.Namespace(
        reps=cfg["reps"], workers=workers, mw_workers=cfg.get("mw_workers", [1])
    )
    header = f"re-rendered from {path}: {data.get('versions', '')}"
    _, ok = print_results(rows, args, set(cfg["parts"]), header)
    return 0 if ok else 1


def _default_threads() -> int:
    from modelwire.config import RuntimeConfig

    return RuntimeConfig(port=0).threads


if __name__ == "__main__":
    sys.exit(main())

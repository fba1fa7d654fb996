"""HTTP face benchmark: modelwire's HTTP/JSON against the Acumos runner and a hand-written
uvicorn + Starlette app, side by side in one run (issue 11, "Performance").

    .venv/bin/python bench/http_bench.py [--reps 5] [--duration 2] [--only a,b,c,d]
    .venv/bin/python bench/http_bench.py --from-json FILE   # an earlier run's tables again

(Not bench/http.py: with bench/ on sys.path, that name would hide the standard library's
`http` package from every script here.)

(a) iris RandomForest(10 trees), 1 row, JSON, 8 concurrent clients (threads of one
    client process, one connection each, re-opened when the server closes it, which the
    Acumos runner does after every answer): `modelwire serve --server sync|aio` with 1
    and 2 workers against acumos-model-runner 0.2.6's JSON endpoint with 1 and 2 gunicorn
    workers, the same body to the same path (POST /model/methods/classify). Each side's
    best configuration, per repetition. Goal: modelwire >= 2x calls/s.
(b) the HTTP path's own overhead, driven by h2load --h1 at 1 and 64 connections:
    `modelwire serve --server aio | sync` against a hand-written uvicorn + Starlette app
    calling the bundle's own function with json.loads/json.dumps, on the event loop |
    on Starlette's thread pool (bench/http_servers.py). Goal: >= 0.85x (best against
    best, and each kind against its like).
(c) one request of 10,000 rows (~0.6 MB of JSON), one client, calls in a loop:
    modelwire (sync, aio) against the Acumos runner (1 worker). Goal: <= 0.5x its median
    time per request.
(d) gRPC with the HTTP face on: bench/runtime.py's iris calls (sequential, 16 in flight)
    and its 4 MB tensor echo against `modelwire serve --http-port 0` and `--no-http`.
    Goal: unchanged (median ratio within 5% and its range holding 1).

Every server and client is its own process; each repetition runs every scenario once in
a freshly shuffled order; ratios are formed within a repetition, medians reported. See
bench/README.md. Needs h2load (nghttp2-client) for (b), Python 3.9 for the Acumos venv.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _harness  # noqa: E402
import acumos_env  # noqa: E402
from _common import MW_LISTENING, PORT_LINE, machine_cpu_s  # noqa: E402
from _procs import Proc, ProcessGroup  # noqa: E402
from http_report import report  # noqa: E402
from http_scenarios import ROWS_C, Scenario, scenarios, split_key  # noqa: E402

# bench/runtime.py (its preparation and its Acumos runner start), not modelwire.runtime
import runtime  # noqa: E402, TID251

PY = sys.executable
HTTP_LISTENING = "modelwire runtime http on "
PATH = "/model/methods/classify"


# ---------------------------------------------------------------- preparation


def prepare(parts: set[str], args: argparse.Namespace, work: Path) -> runtime.Prepared:
    """The iris bundle (and its stubs for (d)), the echo bundle for (d), the Acumos venv
    and dump for (a) and (c) (bench/runtime.py's), and the request bodies."""
    rt_parts = {"a"} | ({"b"} if "d" in parts else set()) | ({"c"} if parts & {"a", "c"} else set())
    prep = runtime.prepare(rt_parts, args, work)
    if "b" in parts and not shutil.which("h2load"):
        raise RuntimeError("(b) needs h2load: apt-get install nghttp2-client")
    write_bodies(work)
    return prep


def write_bodies(work: Path) -> None:
    """body-1.json: the first iris row; body-10000.json: 10,000 rows cycled from the data
    set, setosa first (the clients check the first prediction is class 0)."""
    from sklearn.datasets import load_iris

    data = load_iris().data
    for rows in (1, ROWS_C):
        picked = [data[i % len(data)] for i in range(rows)]
        body = {
            name: [float(r[j]) for r in picked]
            for j, name in enumerate(("sepal_length", "sepal_width", "petal_length", "petal_width"))
        }
        (work / f"body-{rows}.json").write_text(json.dumps(body))


# ---------------------------------------------------------------- servers


def start_server(
    key: str, sc: Scenario, prep: runtime.Prepared, group: ProcessGroup
) -> tuple[Proc, str]:
    """Start the server named `key`; return it and its target (URL or host:port)."""
    impl, kind, workers, http = split_key(key)
    if impl == "acumos":
        proc, url = runtime.start_server(key, prep, group, argparse.Namespace())
        return proc, url.removesuffix(acumos_env.METHOD_PATH)
    if impl == "star":
        argv = [PY, str(HERE / "http_servers.py"), "--bundle", str(prep.iris_bundle)]
        p = group.spawn([*argv, "--kind", kind], key)
        return p, f"http://127.0.0.1:{group.wait_line(p, PORT_LINE, 90)}"
    bundle = prep.echo_bundle if sc.client == "mw-echo" else prep.iris_bundle
    argv = [PY, "-m", "modelwire", "serve", str(bundle), "--port", "0", "--server", kind]
    argv += ["--no-http"] if http == "nohttp" else ["--http-port", "0"]
    if workers > 1:
        argv += ["--workers", str(workers)]
    p = group.spawn([*argv, "--log-level", "warning"], key)
    address = group.wait_line(p, MW_LISTENING, 90)
    if sc.part == "d":
        return p, address
    http_address = group.wait_line(p, HTTP_LISTENING, 5)
    return p, f"http://{http_address}"


# ---------------------------------------------------------------- clients


def client_argv(
    sc: Scenario, target: str, prep: runtime.Prepared, args: argparse.Namespace
) -> list[str]:
    window = ["--warmup", str(args.warmup), "--duration", str(args.duration)]
    if sc.client == "json":
        body = prep.work / f"body-{sc.rows}.json"
        argv = [PY, str(HERE / "http_clients.py"), "--url", target + PATH, "--body", str(body)]
        return [*argv, "--conc", str(sc.conc), "--rows", str(sc.rows), *window]
    argv = [PY, str(HERE / "clients.py"), sc.client, *window, "--conc", str(sc.conc)]
    argv += ["--target", target]
    if sc.client.startswith("iris"):
        argv += ["--stubs", str(prep.stubs)]
    return argv


_H2_RATE = re.compile(r"finished in [\d.]+m?s, ([\d.]+) req/s")
_H2_OK = re.compile(r"(\d+) succeeded, (\d+) failed, (\d+) errored")
_H2_LAT = re.compile(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)")


def _us(text: str) -> float:
    """h2load's '1.23ms' / '456us' / '1.2s' in microseconds."""
    for unit, scale in (("us", 1.0), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return math.nan


def h2load(
    group: ProcessGroup, target: str, sc: Scenario, prep: runtime.Prepared, a: argparse.Namespace
) -> tuple[dict[str, Any], float, float]:
    """One h2load --h1 window; (its figures, machine busy CPU s, wall s over it)."""
    argv = ["h2load", "--h1", "-t", "1", "-c", str(sc.conc), "-m", "1"]
    argv += ["-D", f"{int(a.duration * 1000)}ms", "--warm-up-time", f"{int(a.warmup * 1000)}ms"]
    argv += ["-H", "content-type: application/json", "-d", str(prep.work / "body-1.json")]
    m0, c0 = machine_cpu_s(), _children_cpu()
    p = group.spawn([*argv, target + PATH], f"h2load-{sc.name}")
    t0 = time.monotonic()
    p.popen.wait(a.duration + a.warmup + 60)
    wall = time.monotonic() - t0
    busy, cpu = machine_cpu_s() - m0, _children_cpu() - c0
    out = p.out.read_text(errors="replace")
    rate, ok, lat = _H2_RATE.search(out), _H2_OK.search(out), _H2_LAT.search(out)
    if not rate or not ok or int(ok.group(2)) or int(ok.group(3)):
        raise RuntimeError(f"h2load: {out[-600:]}")
    group.stop(p)
    n = int(ok.group(1))
    res = {
        "calls_per_s": float(rate.group(1)),
        "n": n,
        "n_total": n,
        "lat_mean_us": _us(lat.group(3)) if lat else math.nan,
        "cpu_us_per_call": cpu / max(1, n) * 1e6,
        "client_cpu_s": cpu,
    }
    return res, busy, wall


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_scenario(
    sc: Scenario, rep: int, prep: runtime.Prepared, group: ProcessGroup, args: argparse.Namespace
) -> dict[str, Any]:
    server, target = start_server(sc.server, sc, prep, group)
    try:
        srv0 = server.cpu_s()
        if sc.client == "h2load":
            res, busy, wall = h2load(group, target, sc, prep, args)
        else:
            limit = args.warmup + args.duration + 180
            argv = client_argv(sc, target, prep, args)
            res, busy, wall = _harness.timed_client(group, argv, f"client-{sc.name}", limit)
        srv = server.cpu_s() - srv0
    finally:
        group.stop(server)
    if res.get("errors"):
        raise RuntimeError(f"{res['errors']} calls failed, first: {res.get('first_error')}")
    res.update(
        rep=rep,
        scenario=sc.name,
        server=sc.server,
        server_cpu_s=srv,
        server_cpu_us_per_call=srv / res["n_total"] * 1e6 if res["n_total"] else math.nan,
        other_cores=_harness.other_cores(busy, wall, res["client_cpu_s"], srv),
    )
    return res


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = _harness.parser(__doc__)
    _harness.add_reps(ap)
    _harness.add_windows(ap)
    _harness.add_selection(
        ap,
        only="a,b,c,d",
        only_help="parts to run: any of a,b,c,d",
        seed_help="seed of the shuffled orders",
        scratch_help="cache for the acumos venv, and the work dir (default %(default)s)",
    )
    ap.add_argument("--py39", default=None, help="Python 3.9 for the acumos venv")
    ap.add_argument("--acumos-workers", type=runtime._int_list, default=[1, 2], metavar="N[,N...]")
    ap.add_argument("--mw-workers", type=runtime._int_list, default=[1, 2], metavar="N[,N...]")
    _harness.add_keep(
        ap, "keep the work dir (bundles, logs)", "run nothing: print a --json file's tables"
    )
    args = _harness.parse(ap, argv, "a,b,c,d")
    _harness.check_windows(ap, args)
    return args


def versions() -> str:
    return _harness.versions("modelwire", "uvicorn", "httptools", "starlette", "orjson")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
        cfg = data["config"]
        ns = argparse.Namespace(
            acumos_workers=cfg["acumos_workers"], mw_workers=cfg["mw_workers"], reps=cfg["reps"]
        )
        _harness.print_results(
            data["rows"], f"re-rendered from {args.from_json}", [], lambda s: report(s, ns)
        )
        return 0
    parts: set[str] = args.parts
    run = _harness.Session(args, "http")
    run.run(
        f"modelwire HTTP benchmark: parts {','.join(sorted(parts))}, {args.reps} reps, "
        f"{args.duration:g} s windows after {args.warmup:g} s warm-up, seed {args.seed}",
        lambda: prepare(parts, args, run.work),
        scenarios(parts, args.acumos_workers, args.mw_workers),
        lambda sc, rep, prep: run_scenario(sc, rep, prep, run.group, args),
        lambda sc: {"server": sc.server},
    )
    preamble = [
        "'other load' = CPU cores used by processes outside the benchmark while a client ran "
        f"(> {_harness.NOISY_CORES}: noisy). The machine's load average is in the header.",
    ]
    verdicts, ok = _harness.print_results(
        run.rows,
        run.header(versions()),
        preamble,
        lambda s: report(s, args),
        interrupted=run.interrupted,
    )
    run.failed = run.failed or not ok
    return run.finish({"versions": versions(), "verdicts": verdicts, "rows": run.rows})


if __name__ == "__main__":
    sys.exit(main())

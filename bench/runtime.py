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

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import acumos_env  # noqa: E402
from _common import (  # noqa: E402
    MW_LISTENING,
    PORT_LINE,
    Proc,
    ProcessGroup,
    loadavg,
    machine_cpu_s,
    median,
    run_client,
)

PY = sys.executable
SERVERS = str(HERE / "servers.py")
CLIENTS = str(HERE / "clients.py")
KINDS = ("sync", "aio")
CONC_A = 16  # in flight, scenario (a)
CONC_C = 8  # client threads / in flight, scenario (c)
GOAL_A, GOAL_B, GOAL_C = 0.9, 1.3, 2.0
NOISY_CORES = 0.25  # "other load" above this: a neighbour was busy (grpc-limits.md)


# ---------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Server:
    key: str  # mw-sync, hw-aio, mwecho-sync, raw-aio, acumos
    label: str


@dataclass(frozen=True)
class Scenario:
    name: str  # e.g. "mw-sync/seq"
    server: str | None  # Server key, None for in-process
    client: str  # clients.py sub-command
    conc: int = 1
    venv: str | None = None  # "acumos": run the client with the acumos venv's Python
    channels: int = 1  # iris-aio: gRPC channels (TCP connections) the calls are spread over


def split_key(key: str) -> tuple[str, str, int]:
    """'mw-sync-w2' -> ('mw', 'sync', 2); 'acumos-w1' -> ('acumos', '', 1); 'hw-aio' -> w1."""
    m = re.fullmatch(r"(.*?)-w(\d+)", key)
    base, workers = (m.group(1), int(m.group(2))) if m else (key, 1)
    impl, _, kind = base.partition("-")
    return impl, kind, workers


def mw_key(kind: str, workers: int) -> str:
    return f"mw-{kind}" if workers == 1 else f"mw-{kind}-w{workers}"


def c_names(
    acumos_workers: Sequence[int], mw_workers: Sequence[int]
) -> dict[str, dict[str, list[str]]]:
    """Part (c)'s scenario names: {'seq'|'c8': {'acumos'|'mw': [names]}}.

    modelwire with 1 worker keeps part (a)'s names and one channel. With N > 1
    workers: the sync server at seq (one channel, so one worker: for completeness),
    and both server kinds at c8 with one channel per caller, so that the kernel can
    spread the connections over the workers.
    """
    cc = f"c{CONC_C}"
    out: dict[str, dict[str, list[str]]] = {c: {"acumos": [], "mw": []} for c in ("seq", cc)}
    for w in acumos_workers:
        for c in ("seq", cc):
            out[c]["acumos"].append(f"acumos-w{w}/{c}")
    for w in mw_workers:
        if w == 1:
            out["seq"]["mw"] += [f"mw-{k}/seq" for k in KINDS]
            out[cc]["mw"] += [f"mw-{k}/{cc}" for k in KINDS]
        else:
            out["seq"]["mw"].append(f"{mw_key('sync', w)}/seq")
            out[cc]["mw"] += [f"{mw_key(k, w)}/{cc}-{CONC_C}ch" for k in KINDS]
    return out


def scenarios(
    parts: set[str], acumos_workers: Sequence[int] = (1,), mw_workers: Sequence[int] = (1,)
) -> list[Scenario]:
    out: dict[str, Scenario] = {}

    def add(s: Scenario) -> None:
        out.setdefault(s.name, s)

    if parts & {"a", "c"}:
        add(Scenario("model/inproc", None, "model-inproc"))
        add(Scenario("mwcodec/inproc", None, "codec-inproc"))
    if "a" in parts:
        for kind in KINDS:
            for impl in ("mw", "hw"):
                add(Scenario(f"{impl}-{kind}/seq", f"{impl}-{kind}", "iris-seq"))
                add(Scenario(f"{impl}-{kind}/c{CONC_A}", f"{impl}-{kind}", "iris-aio", CONC_A))
    if "b" in parts:
        for kind in KINDS:
            add(Scenario(f"mwecho-{kind}/echo", f"mwecho-{kind}", "mw-echo"))
            add(Scenario(f"raw-{kind}/echo", f"raw-{kind}", "raw-echo"))
        add(Scenario("numpy/copy", None, "numpy-copy"))
    if "c" in parts:
        add(Scenario("acumos-model/inproc", None, "acumos-inproc", venv="acumos"))
        for c, sides in c_names(acumos_workers, mw_workers).items():
            for name in sides["acumos"] + sides["mw"]:
                key, _, variant = name.partition("/")
                if key.startswith("acumos"):
                    if c == "seq":
                        add(Scenario(name, key, "http-seq"))
                    else:
                        add(Scenario(name, key, "http-conc", CONC_C))
                elif c == "seq":
                    add(Scenario(name, key, "iris-seq"))
                else:
                    ch = CONC_C if variant.endswith("ch") else 1
                    add(Scenario(name, key, "iris-aio", CONC_C, channels=ch))
    return list(out.values())


LABELS = {
    "mw-sync": "modelwire serve --server sync",
    "mw-aio": "modelwire serve --server aio",
    "hw-sync": "hand-written grpc.server",
    "hw-aio": "hand-written grpc.aio",
    "mwecho-sync": "modelwire Tensor echo, sync server",
    "mwecho-aio": "modelwire Tensor echo, aio server",
    "raw-sync": "raw grpcio echo, sync server",
    "raw-aio": "raw grpcio echo, aio server",
    "numpy": "numpy.copy, in-process",
    "acumos": "acumos-model-runner",
    "model": "classify(IrisDataSet) alone, in-process",
    "mwcodec": "modelwire decode + classify + encode, in-process",
    "acumos-model": "acumos from_pb_bytes + classify + as_pb_bytes, in-process (py3.9)",
}


def label(name: str) -> str:
    """What a scenario's server is, from its name (e.g. 'mw-aio-w2/c8-8ch')."""
    key, _, variant = name.partition("/")
    if key in LABELS:
        base = LABELS[key]
        return f"{base} (1 gunicorn worker)" if key == "acumos" else base
    impl, kind, workers = split_key(key)
    base = LABELS.get(f"{impl}-{kind}" if kind else impl, key)
    if impl == "acumos":
        extra = f"{workers} gunicorn worker{'s' if workers > 1 else ''}"
        return f"{base} ({extra})"
    extra = f" --workers {workers}" if workers > 1 else ""
    if variant.endswith("ch"):
        extra += f"; {variant.rpartition('-')[2].removesuffix('ch')} channels"
    return base + extra


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
        m0, t0 = machine_cpu_s(), time.monotonic()
        res, _ = run_client(
            group, argv, f"client-{sc.name}", args.warmup + args.duration + 180, env=env
        )
        m1, t1 = machine_cpu_s(), time.monotonic()
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
    wall = t1 - t0
    res.update(
        rep=rep,
        scenario=sc.name,
        server=sc.server,
        server_cpu_s=srv_cpu,
        server_cpu_us_per_call=srv_cpu / res["n_total"] * 1e6 if res["n_total"] else math.nan,
        wall_s=wall,
        # CPU used by everything else on the machine while the client ran, in cores
        other_cores=max(0.0, (m1 - m0) - res["client_cpu_s"] - srv_cpu) / wall,
        worker_cpu_s=worker_cpu,
    )
    return res


# ---------------------------------------------------------------- summary


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

    def paired(
        self, num: str | Callable[[int], float | None], den: str, metric: str
    ) -> list[float]:
        """num/den per repetition where both ran (num may compute a per-rep value)."""
        out = []
        for rep, d in self.by.get(den, {}).items():
            n = num(rep) if callable(num) else self.by.get(num, {}).get(rep, {}).get(metric)
            if n is not None and d.get(metric):
                out.append(n / d[metric])
        return out

    def best_of(self, names: list[str], metric: str, rep: int) -> tuple[float, str] | None:
        vals = [(self.by[n][rep][metric], n) for n in names if rep in self.by.get(n, {})]
        return max(vals) if len(vals) == len(names) else None


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


def ratio_cell(vals: list[float], higher_is_faster: bool = True) -> tuple[str, str]:
    """('0.97x [0.91-1.02]', 'hand-written faster')-style cells."""
    if not vals:
        return "n/a", ""
    m = statistics.median(vals)
    text = fmt_range(vals, ".2f", "x") if len(vals) > 1 else f"{m:.2f}x"
    mw_faster = m > 1 if higher_is_faster else m < 1
    return text, (
        "about equal"
        if abs(m - 1) < 0.005
        else "modelwire faster"
        if mw_faster
        else "baseline faster"
    )


def inproc_table(s: Summary, names: list[str]) -> None:
    rows = [
        [
            n,
            LABELS[n.split("/")[0]],
            fmt(s.med(n, "lat_p50_us")),
            fmt(s.med(n, "cpu_us_per_call")),
            fmt(s.med(n, "other_cores"), ".2f"),
        ]
        for n in names
        if s.has(n)
    ]
    if rows:
        print(table(["in-process", "what", "p50 us", "CPU us/call", "other load"], rows, "llrrr"))


def overhead_rows(s: Summary, pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Server CPU per call minus the same work done in-process, paired per repetition."""
    rows = []
    for server, inproc in pairs:
        vals = []
        for rep, r in s.by.get(server, {}).items():
            i = s.by.get(inproc, {}).get(rep)
            if i is not None:
                vals.append(r["server_cpu_us_per_call"] - i["cpu_us_per_call"])
        if vals:
            rows.append([server, f"- {inproc}", fmt_range(vals, ",.0f", " us")])
    return rows


def report(s: Summary, args: argparse.Namespace, parts: set[str]) -> list[str]:
    """Print the tables; return the verdict lines."""
    verdicts: list[str] = []
    metric_rows = [
        "calls/s median [min-max]",
        "p50 us",
        "p99 us",
        "srv CPU us/call",
        "cli CPU us/call",
        "other load",
    ]

    def small_rows(names: list[str]) -> list[list[str]]:
        out = []
        for n in names:
            if not s.has(n):
                out.append([n, label(n), s.status(n), "", "", "", "", ""])
                continue
            out.append(
                [
                    n,
                    label(n),
                    fmt_range(s.values(n, "calls_per_s")),
                    fmt(s.med(n, "lat_p50_us")),
                    fmt(s.med(n, "lat_p99_us")),
                    fmt(s.med(n, "server_cpu_us_per_call")),
                    fmt(s.med(n, "cpu_us_per_call")),
                    fmt(s.med(n, "other_cores"), ".2f"),
                ]
            )
        return out

    if "a" in parts:
        print(
            f"\n(a) iris RandomForest(n_estimators=10), 1 row; clients: seq = sync stub, "
            f"c{CONC_A} = grpc.aio with {CONC_A} in flight, one channel"
        )
        names = [
            f"{impl}-{k}/{c}" for c in ("seq", f"c{CONC_A}") for k in KINDS for impl in ("mw", "hw")
        ]
        print(table(["scenario", "server", *metric_rows], small_rows(names), "llrrrrrr"))
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
        verdicts.append(
            f"Goal (a) modelwire >= {GOAL_A}x hand-written grpcio calls/s at both "
            f"concurrencies: {status} ({detail})"
        )

    if "b" in parts:
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
                    fmt(s.med(n, "server_cpu_us_per_call") / 1e3, ".2f")
                    if n != "numpy/copy"
                    else "-",
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
            text, who = ratio_cell(vals, higher_is_faster=False)
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
        verdicts.append(
            f"Goal (b) modelwire Tensor echo <= {GOAL_B}x raw grpcio echo: "
            + (
                f"{'MET' if round(best[0], 2) <= GOAL_B else 'NOT MET'} (best {best[1]} server "
                f"{best[0]:.2f}x; {per_kind})"
                if best
                else "NOT MEASURED"
            )
        )

    if "c" in parts:
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
        print(table(["scenario", "server", *metric_rows], small_rows(names), "llrrrrrr"))
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
        verdicts.append(
            f"Goal (c) modelwire >= {GOAL_C}x acumos-model-runner calls/s, each side's best "
            f"configuration per repetition: {status} ({detail})"
        )
    return verdicts


# ---------------------------------------------------------------- main


def versions() -> str:
    out = [f"Python {platform.python_version()}"]
    for pkg in ("modelwire", "grpcio", "protobuf", "numpy", "scikit-learn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{pkg} {metadata.version(pkg)}")
    return ", ".join(out)


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
        help="cache for the acumos venv, and the work dir (default %(default)s)",
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


def _int_list(text: str) -> list[int]:
    try:
        vals = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,N,...: {text!r}") from None
    if not vals or vals[0] < 1:
        raise argparse.ArgumentTypeError(f"expected worker counts >= 1: {text!r}")
    return vals


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        return rerender(args.from_json)
    parts: set[str] = args.parts
    args.scratch.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix=f"run-{stamp}-", dir=args.scratch))
    logdir = work / "logs"
    logdir.mkdir()
    group = ProcessGroup(logdir)
    # Ctrl-C and SIGTERM stop the run cleanly (explicitly: a shell may start us with
    # SIGINT ignored, and the children, in their own sessions, never see the terminal's)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)
    rows: list[dict[str, Any]] = []
    interrupted = False
    failed = False
    load0 = loadavg()
    t_start = time.monotonic()
    print(
        f"modelwire runtime benchmark: parts {','.join(sorted(parts))}, {args.reps} reps, "
        f"{args.duration:g} s windows after {args.warmup:g} s warm-up, seed {args.seed}"
    )
    print(f"work dir {work}")
    try:
        prep = prepare(parts, args, work)
        plan = scenarios(parts, args.workers, args.mw_workers)
        rng = random.Random(args.seed)
        for rep in range(args.reps):
            order = plan[:]
            rng.shuffle(order)
            print(f"  rep {rep + 1}/{args.reps}: ", end="", flush=True)
            for sc in order:
                try:
                    row = run_scenario(sc, rep, prep, group, args)
                    print(".", end="", flush=True)
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    failed = True
                    row = {"rep": rep, "scenario": sc.name, "server": sc.server, "error": str(exc)}
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
        # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        group.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    header = (
        f"{versions()}; {os.cpu_count()} CPUs; load average {load0:.2f} before, "
        f"{loadavg():.2f} after; {time.monotonic() - t_start:.0f} s"
    )
    verdicts, report_ok = print_results(rows, args, parts, header, interrupted)
    failed = failed or not report_ok
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "config": {
                        k: (
                            str(v)
                            if isinstance(v, Path)
                            else sorted(v)
                            if isinstance(v, set)
                            else v
                        )
                        for k, v in vars(args).items()
                    },
                    "versions": versions(),
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
    args: argparse.Namespace,
    parts: set[str],
    header: str,
    interrupted: bool = False,
) -> tuple[list[str], bool]:
    """Print the tables and verdicts; return the verdicts and whether the report worked."""
    summary = Summary(rows)
    print(f"\n=== results{' (INTERRUPTED, partial)' if interrupted else ''} ===")
    print(header)
    print(
        "glibc malloc: modelwire.services.tune_malloc() (mmap threshold 256 MiB, trim "
        "threshold 512 MiB) is in effect in every modelwire server (`modelwire serve` calls "
        "it), every hand-written and raw-echo server, and every client process including "
        "numpy.copy; not in the acumos runner (1-row messages only)."
    )
    print(
        f"Hand-written sync servers use ThreadPoolExecutor({_default_threads()}), like "
        "`modelwire serve --server sync` by default. 'other load' = CPU cores used by "
        f"processes outside the benchmark during the client's run (> {NOISY_CORES}: noisy)."
    )
    verdicts: list[str] = []
    ok = True
    try:
        verdicts = report(summary, args, parts) if summary.rows else []
    except Exception:  # keep the raw rows even if the report has a bug
        traceback.print_exc()
        ok = False
    noisy = median(r["other_cores"] for r in summary.rows) if summary.rows else math.nan
    print()
    for v in verdicts:
        print(v)
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

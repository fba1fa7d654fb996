"""modelwire catalog benchmark: a big bundle through the catalog against a copy on disk,
and search in a catalog of 10,000 models.

    .venv/bin/python bench/catalog.py [--reps 5] [--size-mb 200] [--models 10000] [--json FILE]
    .venv/bin/python bench/catalog.py --only a --reps 3      # only the transfers
    .venv/bin/python bench/catalog.py --from-json FILE       # print an earlier run's tables

(a) a bundle zip of --size-mb (a model holding that many MB of random, incompressible
    weights) pushed to and pulled from `modelwire catalog serve` on loopback
    (`CatalogClient.push(zip)`, `CatalogClient.pull(ref, dest.zip)`: the CLI's code
    without its progress bar), against `shutil.copyfile` of the same zip on the same
    file system. A push ends with the bundle checked, fsynced and visible; the copy
    is not fsynced (`copy+fsync` is shown for reference), and the same bytes through a
    bare grpcio stream (`raw-up`, `raw-down`: the transport's ceiling). MB/s, and
    push/copy and pull/copy paired per repetition. Goal: push and pull each >= 0.3x
    the copy.
(b) a catalog of --models models (1 or 2 versions each; 90% published) inserted
    through the Store API (`Store.insert` of records built by the service's own
    `version_record` from generated schemas and proto text; see bench/README.md),
    searched through the gRPC service by a client process: a listing, text (broad
    and narrow), category, tag, category+tag, --accepts (broad and narrow) and
    --produces. Latency per query kind, p50 and p99. Goal: p50 < 50 ms for each kind.

Every server and every client is its own process; each scenario starts its server
afresh. Each repetition runs every scenario once, in a freshly shuffled order; ratios
are formed between scenarios of the same repetition and their median is reported.
Clients time only the operation itself and measure, over that window, the CPU of the
machine, of themselves and of the server, so 'other load' is what the rest of the
machine used meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import _harness  # noqa: E402
from _common import PORT_LINE  # noqa: E402
from _procs import Proc, ProcessGroup, run_client  # noqa: E402
from catalog_report import TRANSFERS, report  # noqa: E402

PY = sys.executable
CLIENTS = str(HERE / "catalog_clients.py")
POPULATE = str(HERE / "catalog_populate.py")
LISTENING = "modelwire catalog listening on "


# ---------------------------------------------------------------- preparation


@dataclass
class Prepared:
    work: Path
    bundle: Path | None = None  # the big zip
    pull_data: Path | None = None  # a catalog holding it
    search_data: Path | None = None  # the 10,000 models
    token: str = ""
    notes: list[str] | None = None


def _run(argv: list[str], what: str, log: Path) -> str:
    with open(log, "ab") as lf:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=lf, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}); see {log}")
    return proc.stdout.decode()


def add_user(data: Path, name: str, log: Path) -> str:
    out = _run(
        [PY, "-m", "modelwire", "catalog", "user", "add", name, "--data", str(data)],
        f"catalog user add {name}",
        log,
    )
    return out.splitlines()[-1]


def start_catalog(group: ProcessGroup, data: Path, label: str) -> tuple[Proc, str]:
    p = group.spawn(
        # validation off: its jobs would take the CPU the figures are about
        [
            *(PY, "-m", "modelwire", "catalog", "serve", "--data", str(data), "--port", "0"),
            "--validate",
            "off",
        ],
        label,
    )
    return p, group.wait_line(p, LISTENING, 60)


def prepare(parts: set[str], args: argparse.Namespace, work: Path, group: ProcessGroup) -> Prepared:
    prep = Prepared(work, notes=[])
    log = work / "prepare.log"
    if "a" in parts:
        cached = args.scratch / f"weights-{args.size_mb}mb.zip"
        if not cached.is_file():
            print(f"  dumping a {args.size_mb} MB bundle (cached in {cached}) ...", flush=True)
            tmp = cached.with_suffix(".tmp.zip")
            _run(
                [
                    PY,
                    CLIENTS,
                    "dump",
                    "--size",
                    str(args.size_mb * 1_000_000),
                    "--dest",
                    str(tmp),
                ],
                "dumping the big bundle",
                log,
            )
            tmp.rename(cached)
        prep.bundle = work / "weights.zip"
        shutil.copyfile(cached, prep.bundle)
        print("  pushing it once, for the pull scenarios ...", flush=True)
        prep.pull_data = work / "pull-catalog"
        prep.token = add_user(prep.pull_data, "bench", log)
        server, address = start_catalog(group, prep.pull_data, "catalog-prepare")
        try:
            run_client(
                group,
                [
                    PY,
                    CLIENTS,
                    "push",
                    "--src",
                    str(prep.bundle),
                    "--address",
                    address,
                    "--token",
                    prep.token,
                    "--server-pid",
                    str(server.pid),
                ],
                "prepare-push",
                300,
            )
        finally:
            group.stop(server)
    if "b" in parts:
        prep.search_data = work / "search-catalog"
        print(f"  inserting {args.models:,} models through the Store API ...", flush=True)
        out = _run(
            [PY, POPULATE, str(prep.search_data), str(args.models), str(args.seed)],
            "populating the search catalog",
            log,
        )
        info = json.loads(out.splitlines()[-1])
        prep.notes.append(  # type: ignore[union-attr]
            f"search catalog: {info['names']:,} models, {info['versions']:,} versions "
            f"({info['published']:,} published), {info['methods']:,} methods; inserted through "
            f"Store.insert in {info['seconds']:.1f} s; database {info['db_mb']:.1f} MB"
        )
        prep.token = prep.token or ""
        (work / "search-token").write_text(info["token"])
    return prep


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class Scenario:
    name: str
    part: str


def scenarios(parts: set[str]) -> list[Scenario]:
    out = []
    if "a" in parts:
        out += [Scenario(n, "a") for n in TRANSFERS]
    if "b" in parts:
        out.append(Scenario("search", "b"))
    return out


def run_scenario(
    sc: Scenario, rep: int, prep: Prepared, group: ProcessGroup, args: argparse.Namespace
) -> dict[str, Any]:
    log = prep.work / "prepare.log"
    server: Proc | None = None
    fresh: Path | None = None
    os.sync()  # no writeback left from the scenario before competes with this one's writes
    try:
        argv = [PY, CLIENTS, sc.name]
        if sc.name in ("copy", "copy+fsync"):
            argv += ["--src", str(prep.bundle), "--dest", str(prep.work / "copy.zip")]
        elif sc.name == "push":
            fresh = prep.work / f"push-catalog-{rep}"
            token = add_user(fresh, "bench", log)
            server, address = start_catalog(group, fresh, f"catalog-push-{rep}")
            argv += ["--src", str(prep.bundle), "--address", address, "--token", token]
        elif sc.name in ("raw-up", "raw-down"):
            server = group.spawn([PY, CLIENTS, "raw-server", str(prep.bundle)], f"raw-{rep}")
            address = f"127.0.0.1:{group.wait_line(server, PORT_LINE, 60)}"
            argv += ["--src", str(prep.bundle), "--address", address]
        elif sc.name == "pull":
            assert prep.pull_data is not None
            server, address = start_catalog(group, prep.pull_data, f"catalog-pull-{rep}")
            argv += ["--ref", "weights", "--dest", str(prep.work / "pulled.zip")]
            argv += ["--address", address, "--token", prep.token]
        else:
            assert prep.search_data is not None
            server, address = start_catalog(group, prep.search_data, f"catalog-search-{rep}")
            token = (prep.work / "search-token").read_text()
            argv += ["--address", address, "--token", token, "--seed", str(args.seed + rep)]
            argv += ["--queries", str(args.queries)]
        if server is not None:
            argv += ["--server-pid", str(server.pid)]
        res, _ = run_client(group, argv, f"client-{sc.name}-{rep}", 600)
    finally:
        if server is not None:
            group.stop(server)
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
    res.update(rep=rep, scenario=sc.name, part=sc.part)
    return res


# ---------------------------------------------------------------- main


def versions() -> str:
    return f"{_harness.versions('grpcio', 'protobuf')}, SQLite {sqlite3.sqlite_version}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = _harness.parser(__doc__)
    _harness.add_reps(ap)
    ap.add_argument("--size-mb", type=int, default=200, help="(a) bundle size, MB (default 200)")
    ap.add_argument("--models", type=int, default=10_000, help="(b) models (default 10000)")
    ap.add_argument("--queries", type=int, default=30, help="(b) queries per kind and rep")
    _harness.add_selection(
        ap,
        only="a,b",
        only_help="parts to run: any of a,b",
        seed_help="seed of the orders and the data",
        scratch_help="where the big bundle is cached and each run's work dir is made "
        "(default %(default)s)",
    )
    _harness.add_keep(ap, "keep the work dir (catalogs, logs)", None)
    args = _harness.parse(ap, argv, "a,b")
    if args.reps < 1 or args.size_mb < 1 or args.models < 1:
        ap.error("--reps, --size-mb and --models must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        data = json.loads(args.from_json.read_text())
        header = f"re-rendered from {args.from_json}: {data['header']}"
        print_results(
            data["rows"],
            set(data["config"]["parts"]),
            header,
            data["notes"],
            data["config"]["size_mb"],
        )
        return 0
    parts: set[str] = args.parts
    run = _harness.Session(args, "catalog")
    prep = run.run(
        f"modelwire catalog benchmark: parts {','.join(sorted(parts))}, {args.reps} reps, "
        f"seed {args.seed}",
        lambda: prepare(parts, args, run.work, run.group),
        scenarios(parts),
        lambda sc, rep, prep: run_scenario(sc, rep, prep, run.group, args),
        lambda sc: {"part": sc.part},
        traceback_on_failure=True,
    )
    notes = (prep.notes or []) if prep is not None else []
    header = run.header(versions())
    verdicts, ok = print_results(run.rows, parts, header, notes, args.size_mb, run.interrupted)
    run.failed = run.failed or not ok
    return run.finish({"header": header, "notes": notes, "verdicts": verdicts, "rows": run.rows})


def print_results(
    rows: list[dict[str, Any]],
    parts: set[str],
    header: str,
    notes: list[str],
    size_mb: int,
    interrupted: bool = False,
) -> tuple[list[str], bool]:
    preamble = [
        *notes,
        "Servers: `modelwire catalog serve` (16 threads), a new process per scenario. Clients "
        "time the operation alone (connected first); CPU figures are over that window. "
        f"'other load' = CPU cores used by processes outside the benchmark meanwhile (> "
        f"{_harness.NOISY_CORES}: noisy).",
    ]
    return _harness.print_results(
        rows, header, preamble, lambda s: report(s, parts, size_mb), interrupted=interrupted
    )


if __name__ == "__main__":
    sys.exit(main())

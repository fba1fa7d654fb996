"""What the orchestrators (runtime.py, broker.py, catalog.py) share around their scenarios.

- the common command-line options and their checks;
- `Session`: the work dir under --scratch, Ctrl-C/SIGTERM handling, every repetition
  running every scenario once in a freshly shuffled order (seeded), a row per run (or
  an error row), every process stopped at the end, the --json file, and which of the
  work dir is kept;
- `timed_client` and `other_cores`: the CPU of processes outside the benchmark while a
  client ran ('other load');
- `print_results`: the results frame (header, preamble, tables, verdicts, warnings).
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
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, TypeVar

from _common import loadavg, machine_cpu_s, median
from _procs import ProcessGroup, run_client
from _summary import Summary

NOISY_CORES = 0.25  # "other load" above this: a neighbour was busy (grpc-limits.md)


# ---------------------------------------------------------------- command line


def parser(doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def add_reps(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")


def add_windows(ap: argparse.ArgumentParser) -> None:
    """--duration and --warmup: the measured window of each client, and its warm-up."""
    ap.add_argument("--duration", type=float, default=2.0, help="measured window, s (default 2)")
    ap.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="warm-up before each window, s (default min(0.5, duration/2))",
    )


def add_selection(
    ap: argparse.ArgumentParser, *, only: str, only_help: str, seed_help: str, scratch_help: str
) -> None:
    """--only (default `only`, e.g. "a,b,c"), --json, --seed and --scratch."""
    ap.add_argument("--only", default=only, help=only_help)
    ap.add_argument("--json", type=Path, default=None, help="write the raw rows here")
    ap.add_argument("--seed", type=int, default=None, help=seed_help)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/modelwire-bench"), help=scratch_help)


def add_timed_options(ap: argparse.ArgumentParser, scratch_help: str) -> None:
    """runtime.py's and broker.py's: --reps, --duration, --warmup, --only a,b,c, --json,
    --seed, --scratch."""
    add_reps(ap)
    add_windows(ap)
    add_selection(
        ap,
        only="a,b,c",
        only_help="scenarios to run: any of a,b,c",
        seed_help="seed of the shuffled orders",
        scratch_help=scratch_help,
    )


def add_keep(ap: argparse.ArgumentParser, keep_help: str, from_json_help: str | None) -> None:
    ap.add_argument("--keep", action="store_true", help=keep_help)
    ap.add_argument("--from-json", type=Path, default=None, metavar="FILE", help=from_json_help)


def parse(ap: argparse.ArgumentParser, argv: list[str] | None, only: str) -> argparse.Namespace:
    """Parse; set `args.parts` (a subset of `only`) and a random --seed if none was given."""
    args = ap.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if not parts or parts - set(only.split(",")):
        ap.error(f"--only takes a comma-separated subset of {only}")
    args.parts = parts
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 30)
    return args


def check_windows(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The default --warmup, and the checks of --reps and --duration."""
    if args.warmup is None:
        args.warmup = min(0.5, args.duration / 2)
    if args.reps < 1 or args.duration <= 0:
        ap.error("--reps must be >= 1 and --duration > 0")


def versions(*packages: str) -> str:
    """'Python 3.11.7, grpcio 1.2.3, ...' for the packages that are installed."""
    out = [f"Python {platform.python_version()}"]
    for pkg in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out.append(f"{pkg} {metadata.version(pkg)}")
    return ", ".join(out)


# ---------------------------------------------------------------- the run


class _Named(Protocol):
    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=_Named)
P = TypeVar("P")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Session:
    """One run: its work dir (`work`, logs in `work/logs`), its processes (`group`), its rows."""

    def __init__(self, args: argparse.Namespace, prefix: str) -> None:
        self.args = args
        args.scratch.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.work = Path(tempfile.mkdtemp(prefix=f"{prefix}-{stamp}-", dir=args.scratch))
        self.logdir = self.work / "logs"
        self.logdir.mkdir()
        self.group = ProcessGroup(self.logdir)
        # Ctrl-C and SIGTERM stop the run cleanly (explicitly: a shell may start us with
        # SIGINT ignored, and the children, in their own sessions, never see the terminal's)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _raise_interrupt)
        self.rows: list[dict[str, Any]] = []
        self.interrupted = self.failed = False
        self.load0 = loadavg()
        self.t_start = time.monotonic()

    def run(
        self,
        intro: str,
        prepare: Callable[[], P],
        plan: list[S],
        run_scenario: Callable[[S, int, P], dict[str, Any]],
        error_fields: Callable[[S], dict[str, Any]],
        *,
        traceback_on_failure: bool = False,
    ) -> P | None:
        """Prepare, then every repetition; return what `prepare` made (None if it failed).

        A scenario that fails leaves a row {rep, scenario, **error_fields(sc), error}.
        """
        print(intro)
        print(f"work dir {self.work}")
        prep: P | None = None
        try:
            prep = prepare()
            rng = random.Random(self.args.seed)
            for rep in range(self.args.reps):
                order = plan[:]
                rng.shuffle(order)
                print(f"  rep {rep + 1}/{self.args.reps}: ", end="", flush=True)
                for sc in order:
                    try:
                        row = run_scenario(sc, rep, prep)
                        print(".", end="", flush=True)
                    except KeyboardInterrupt:
                        raise
                    except Exception as exc:
                        self.failed = True
                        row = {"rep": rep, "scenario": sc.name, **error_fields(sc)}
                        row["error"] = str(exc)
                        print("E", end="", flush=True)
                        print(f"\n    {sc.name} failed: {exc}", file=sys.stderr)
                    self.rows.append(row)
                print(flush=True)
        except KeyboardInterrupt:
            self.interrupted = True
            print("\ninterrupted: stopping every process started ...", file=sys.stderr)
        except Exception as exc:
            self.failed = True
            if traceback_on_failure:
                traceback.print_exc()
            print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        finally:
            # a second Ctrl-C must not cut the clean-up short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.group.stop_all()
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return prep

    def header(self, versions: str) -> str:
        """'<versions>; N CPUs; load average X before, Y after; T s'."""
        return (
            f"{versions}; {os.cpu_count()} CPUs; load average {self.load0:.2f} before, "
            f"{loadavg():.2f} after; {time.monotonic() - self.t_start:.0f} s"
        )

    def finish(self, saved: dict[str, Any]) -> int:
        """Write --json ({"config": the options, **saved}); keep or remove the work dir;
        return the exit status (0, 1 if anything failed, 130 if interrupted)."""
        args = self.args
        if args.json:
            config = {
                k: (str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, set) else v)
                for k, v in vars(args).items()
            }
            args.json.write_text(json.dumps({"config": config, **saved}, indent=1))
            print(f"raw rows written to {args.json}")
        if self.failed or self.interrupted or args.keep:
            print(f"logs kept in {self.logdir}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)
        return 130 if self.interrupted else 1 if self.failed else 0


# ---------------------------------------------------------------- other load


def timed_client(
    group: ProcessGroup,
    argv: Sequence[str],
    label: str,
    timeout: float,
    *,
    env: dict[str, str] | None = None,
) -> tuple[dict[str, Any], float, float]:
    """`run_client`, and the machine's busy CPU seconds and the wall seconds over its run."""
    m0, t0 = machine_cpu_s(), time.monotonic()
    res, _ = run_client(group, argv, label, timeout, env=env)
    m1, t1 = machine_cpu_s(), time.monotonic()
    return res, m1 - m0, t1 - t0


def other_cores(busy_s: float, wall_s: float, *ours: float) -> float:
    """Cores used by everything else on the machine: busy CPU minus the benchmark's own."""
    rest = busy_s
    for cpu in ours:
        rest -= cpu
    return max(0.0, rest) / wall_s


# ---------------------------------------------------------------- results


def print_results(
    rows: list[dict[str, Any]],
    header: str,
    preamble: Sequence[str],
    report: Callable[[Summary], list[str]],
    *,
    notes: Sequence[str] = (),
    interrupted: bool = False,
) -> tuple[list[str], bool]:
    """Print the header, the preamble lines, the report's tables, then its verdicts, the
    notes and the warnings (other load, failed runs); return the verdicts and whether the
    report worked (a bug in it leaves a traceback, and the raw rows are still saved)."""
    summary = Summary(rows)
    print(f"\n=== results{' (INTERRUPTED, partial)' if interrupted else ''} ===")
    print(header)
    for line in preamble:
        print(line)
    verdicts: list[str] = []
    ok = True
    try:
        verdicts = report(summary) if summary.rows else []
    except Exception:  # keep the raw rows even if the report has a bug
        traceback.print_exc()
        ok = False
    noisy = median(r["other_cores"] for r in summary.rows) if summary.rows else math.nan
    print()
    for v in verdicts:
        print(v)
    for note in notes:
        print(note)
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

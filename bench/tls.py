"""What TLS costs a model service: the iris model served plaintext and with TLS, side by side.

    .venv/bin/python bench/tls.py [--reps 5] [--duration 2] [--server sync|aio]

Two `modelwire serve` processes of the same iris bundle (examples/iris/model.py), one
plaintext and one with `--tls-cert/--tls-key` (a self-signed P-256 certificate made with
openssl for this run), each called by a client process of its own with the generated
stubs (bench/clients.py): sequentially (one call at a time, sync stub) and with 16 calls
in flight (grpc.aio, one channel). Each repetition runs the four scenarios once in a
freshly shuffled order; the TLS/plaintext ratios are formed within a repetition and their
median is printed. Goal (issue 12): the p50 latency with TLS well under 1.3x plaintext's.
"""

from __future__ import annotations

import argparse
import importlib
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import MW_LISTENING, median  # noqa: E402
from _procs import ProcessGroup, run_client  # noqa: E402

# bench/runtime.py's preparation (the iris bundle and its stubs); by name, as the lint
# rule keeps `runtime` for the package
prepare = importlib.import_module("runtime").prepare

PY = sys.executable
CLIENTS = str(HERE / "clients.py")
SCENARIOS = [(mode, load) for mode in ("plain", "tls") for load in ("seq", "c16")]


def make_certificate(work: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1 (its own CA), and its key."""
    cert, key = work / "server.crt", work / "server.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=float, default=2.0, help="measured window, s")
    ap.add_argument("--warmup", type=float, default=0.5, help="warm-up before it, s")
    ap.add_argument("--server", choices=["sync", "aio"], default="sync")
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mw-bench-tls-") as tmp:
        work = Path(tmp)
        print("preparing: the iris bundle, its stubs, a certificate ...", flush=True)
        prep = prepare({"a"}, args, work)
        cert, key = make_certificate(work)
        group = ProcessGroup(work)
        try:
            targets = {}
            for mode in ("plain", "tls"):
                argv = [PY, "-m", "modelwire", "serve", str(prep.iris_bundle), "--port", "0"]
                argv += ["--http-port", "0", "--server", args.server]
                if mode == "tls":
                    argv += ["--tls-cert", str(cert), "--tls-key", str(key)]
                p = group.spawn(argv, f"serve-{mode}")
                targets[mode] = group.wait_line(p, MW_LISTENING, 90)
            rows = run(args, prep.stubs, cert, targets, group)
        finally:
            group.stop_all()
    report(rows, args)
    return 0


def run(
    args: argparse.Namespace,
    stubs: Path | None,
    ca: Path,
    targets: dict[str, str],
    group: ProcessGroup,
) -> list[dict[str, dict[str, Any]]]:
    rng = random.Random(args.seed)
    rows = []
    for rep in range(args.reps):
        order = SCENARIOS[:]
        rng.shuffle(order)
        row = {}
        for mode, load in order:
            argv = [PY, CLIENTS, "iris-seq" if load == "seq" else "iris-aio"]
            argv += ["--target", targets[mode], "--stubs", str(stubs), "--conc", "16"]
            argv += ["--duration", str(args.duration), "--warmup", str(args.warmup)]
            if mode == "tls":
                argv += ["--ca", str(ca)]
            res, _ = run_client(group, argv, f"{mode}-{load}-{rep}", 120)
            row[f"{mode}-{load}"] = res
        rows.append(row)
        print(f"  repetition {rep + 1}/{args.reps} done", flush=True)
    return rows


def report(rows: list[dict[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    print(
        f"\nTLS against plaintext, iris model, `modelwire serve --server {args.server}`, "
        f"{len(rows)} repetitions of {args.duration:g} s (medians)\n"
    )
    print(f"{'load':<14}{'mode':<7}{'calls/s':>10}{'p50 us':>10}{'p99 us':>10}")
    for load, label in (("seq", "sequential"), ("c16", "16 in flight")):
        for mode in ("plain", "tls"):
            key = f"{mode}-{load}"
            cps = median(r[key]["calls_per_s"] for r in rows)
            p50 = median(r[key]["lat_p50_us"] for r in rows)
            p99 = median(r[key]["lat_p99_us"] for r in rows)
            print(f"{label:<14}{mode:<7}{cps:>10.0f}{p50:>10.0f}{p99:>10.0f}")
    print("\nTLS / plaintext, per repetition, median:")
    for load, label in (("seq", "sequential"), ("c16", "16 in flight")):
        lat = median(
            r[f"tls-{load}"]["lat_p50_us"] / r[f"plain-{load}"]["lat_p50_us"] for r in rows
        )
        thr = median(
            r[f"tls-{load}"]["calls_per_s"] / r[f"plain-{load}"]["calls_per_s"] for r in rows
        )
        verdict = "meets" if lat < 1.3 else "MISSES"
        print(
            f"  {label:<14} p50 latency {lat:.2f}x, calls/s {thr:.2f}x  "
            f"({verdict} the goal: p50 under 1.3x)"
        )


if __name__ == "__main__":
    sys.exit(main())

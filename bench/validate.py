"""modelwire validation benchmark: `modelwire validate` of the iris bundle with a warm wheel
cache, in the venv mode and in the docker mode, split into its phases.

    .venv/bin/python bench/validate.py                      # 3 runs of each mode
    .venv/bin/python bench/validate.py --reps 1 --modes venv  # a smoke run
    .venv/bin/python bench/validate.py --modes venv,docker,catalog-venv,catalog-docker
    .venv/bin/python bench/validate.py --json /tmp/validate.json

The bundle is examples/iris/model.py (RandomForest: numpy, scipy, scikit-learn) dumped at
the start with two recorded examples. Before the timed runs, one untimed run of each mode
warms the caches the goal assumes: the wheelhouse (~/.cache/modelwire/wheels: the model's
wheels and modelwire's own) and, in docker mode, the image of this exact bundle (the
validation of a pushed version reuses it; building it is `bench/build.py`'s subject).

Each run is `modelwire.containers.validation.validate` end to end; its report gives the
phases: environment (venv: wheelhouse links, a venv without pip, pip install --no-index
--no-compile; docker: base probe, wheel check, image lookup), load (server start to
SERVING, inside the environment), calls (2 examples x 5 calls) and the total wall time.
Goal: total <= 30 s in each mode. The load average is printed with every run: on a
loaded machine the figures are not the machine's.

The `catalog-venv` and `catalog-docker` modes (not run by default) time the same work as
the catalog does it: `catalog serve --validate venv|docker` as a subprocess, a new iris
version pushed per run (versions are immutable), and the wall time from the push to the
verdict `show` reports (the queue, the worker process and the job's own steps included);
its phases are those of the stored report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _tables import table  # noqa: E402

GOAL_S = 30.0
PREFIX = "modelwire-bench"
EXAMPLES = (
    '{"sepal_length": [5.1], "sepal_width": [3.5], "petal_length": [1.4], "petal_width": [0.2]}',
    '{"sepal_length": [7.7], "sepal_width": [3.0], "petal_length": [6.1], "petal_width": [2.3]}',
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def dump_iris(work: Path, version: str = "1.0.0") -> Path:
    out = work / f"iris-{version}"
    argv = [sys.executable, "-m", "modelwire", "dump", f"{ROOT}/examples/iris/model.py:model"]
    argv += ["iris", "-o", str(out), "--version", version]
    for example in EXAMPLES:
        argv += ["--example", f"classify={example}"]
    subprocess.run(argv, check=True, capture_output=True, text=True)
    return out


def one(bundle: Path, mode: str, images: set[str]) -> dict[str, Any]:
    from modelwire.containers.validation import validate

    t0 = time.monotonic()
    report = validate(bundle, docker=mode == "docker", image_prefix=PREFIX)
    if report.environment.image:
        images.add(report.environment.image)
    wall = time.monotonic() - t0
    if not report.passed:
        raise SystemExit(f"the {mode} validation failed: {report.reason}")
    p = report.phases
    return {
        "mode": mode,
        "wall_s": round(wall, 3),
        "environment_s": p.environment,
        "load_s": p.load,
        "calls_s": p.calls,
        "total_s": p.total,
        "p50_ms": report.methods[0].p50_ms,
        "loadavg": round(os.getloadavg()[0], 2),
    }


class CatalogRuns:
    """`catalog serve --validate MODE` as a subprocess, and a new iris version per run."""

    def __init__(self, work: Path, mode: str) -> None:
        self.work, self.mode, self.pushed = work, mode, 0
        data = work / f"catalog-{mode}"
        shutil.rmtree(data, ignore_errors=True)
        py = [sys.executable, "-m", "modelwire"]
        added = subprocess.run(
            [*py, "catalog", "user", "add", "bench", "--data", str(data)],
            check=True,
            capture_output=True,
            text=True,
        )
        self.token = added.stdout.splitlines()[-1]
        argv = [*py, "catalog", "serve", "--data", str(data), "--port", "0", "--log-format"]
        argv += ["json", "--validate", mode, "--image-prefix", PREFIX]
        self.log = (work / f"catalog-{mode}.log").open("w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("modelwire catalog listening on "):
                self.address = line.split()[-1]
                break
        else:
            raise SystemExit(f"catalog serve --validate {mode} did not start: see {self.log.name}")

    def one(self, images: set[str]) -> dict[str, Any]:
        from modelwire.bundle.report import report_from_json
        from modelwire.catalog.client import CatalogClient
        from modelwire.config import CatalogSettings

        self.pushed += 1
        version = f"1.0.{self.pushed}"
        bundle = dump_iris(self.work, version)
        with CatalogClient(CatalogSettings(self.address, self.token)) as client:
            t0 = time.monotonic()
            client.push(bundle)
            _, verdict = client.wait_validated(f"iris:{version}", 1800, interval=0.2)
            wall = time.monotonic() - t0
        if verdict.status != "passed" or verdict.report is None:
            raise SystemExit(
                f"the catalog's {self.mode} validation: {verdict.status} {verdict.reason}"
            )
        report = report_from_json(verdict.report)
        if report.environment.image:
            images.add(report.environment.image)
        p = report.phases
        return {
            "mode": f"catalog-{self.mode}",
            "wall_s": round(wall, 3),
            "environment_s": p.environment,
            "load_s": p.load,
            "calls_s": p.calls,
            "total_s": round(wall, 3),  # push to verdict, as a contributor waits for it
            "p50_ms": report.methods[0].p50_ms,
            "loadavg": round(os.getloadavg()[0], 2),
        }

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        self.log.close()


def remove_images(tags: set[str]) -> None:
    """The images this run built (tagged under PREFIX), so none is left behind."""
    if not tags:
        return
    import docker

    client = docker.from_env()
    try:
        for tag in tags:
            client.images.remove(tag, force=True)
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--modes",
        default="venv,docker",
        help="comma-separated: venv, docker, catalog-venv, catalog-docker",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the runs here")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    runs: list[dict[str, Any]] = []
    images: set[str] = set()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
            bundle = dump_iris(Path(tmp))
            for mode in modes:
                catalog = CatalogRuns(Path(tmp), mode[8:]) if mode.startswith("catalog-") else None
                try:
                    log(f"warming the caches: one untimed {mode} validation")
                    catalog.one(images) if catalog else one(bundle, mode, images)
                    for rep in range(args.reps):
                        run = catalog.one(images) if catalog else one(bundle, mode, images)
                        log(f"{mode} #{rep + 1}: {run['total_s']:.1f} s (load {run['loadavg']})")
                        runs.append(run)
                finally:
                    if catalog is not None:
                        catalog.close()
    finally:
        remove_images(images)
    rows = []
    for mode in modes:
        mine = [r for r in runs if r["mode"] == mode]

        def med(key: str, runs_of_mode: list[dict[str, Any]] = mine) -> str:
            return f"{statistics.median(r[key] for r in runs_of_mode):.2f}"

        total = statistics.median(r["total_s"] for r in mine)
        rows.append(
            [
                mode,
                str(len(mine)),
                med("environment_s"),
                med("load_s"),
                med("calls_s"),
                med("total_s"),
                med("p50_ms"),
                "yes" if total <= GOAL_S else "NO",
            ]
        )
    print(
        table(
            ["mode", "runs", "environment s", "load s", "calls s", "total s", "p50 ms", "<= 30 s"],
            rows,
            "lrrrrrrl",
        )
    )
    if args.json is not None:
        args.json.write_text(json.dumps({"goal_s": GOAL_S, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()

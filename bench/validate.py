"""modelwire validation benchmark: `modelwire validate` of the iris bundle with a warm wheel
cache, in the venv mode and in the docker mode, split into its phases.

    .venv/bin/python bench/validate.py                      # 3 runs of each mode
    .venv/bin/python bench/validate.py --reps 1 --modes venv  # a smoke run
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
"""

from __future__ import annotations

import argparse
import json
import os
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


def dump_iris(work: Path) -> Path:
    out = work / "iris"
    argv = [sys.executable, "-m", "modelwire", "dump", f"{ROOT}/examples/iris/model.py:model"]
    argv += ["iris", "-o", str(out)]
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
    parser.add_argument("--modes", default="venv,docker", help="comma-separated: venv,docker")
    parser.add_argument("--json", type=Path, default=None, help="write the runs here")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    runs: list[dict[str, Any]] = []
    images: set[str] = set()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
            bundle = dump_iris(Path(tmp))
            for mode in modes:
                log(f"warming the caches: one untimed {mode} validation")
                one(bundle, mode, images)
                for rep in range(args.reps):
                    run = one(bundle, mode, images)
                    log(f"{mode} #{rep + 1}: {run['total_s']:.1f} s (load {run['loadavg']})")
                    runs.append(run)
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

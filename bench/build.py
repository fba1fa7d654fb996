"""modelwire image benchmark: cold build vs a model-only rebuild, what the image adds on
top of its base vs the model's venv, and container start to SERVING.

    .venv/bin/python bench/build.py                          # 3 cold/rebuild pairs, 7 starts
    .venv/bin/python bench/build.py --reps 1 --starts 3 --json /tmp/build.json
    .venv/bin/python bench/build.py --from-json /tmp/build.json   # print the tables again

The model is examples/iris/model.py (RandomForest, numpy + scikit-learn), dumped at the
start of the run as version 1.0.0, and retrained (random_state=1) as version 1.1.0: a
new model with the same requirements, as a contributor's next release would be.

(a) build times, `modelwire.containers.images.build_image` end to end (bundle check, base probe,
    build context with its wheelhouse, every build step), per repetition:
    - cold: the 1.0.0 image with no layer cache. Before it, every image this benchmark
      built before (final and every step's image, both stages) is removed, and it builds
      with no cache (`docker build --no-cache`), so no layer above the base is reused,
      not even one an identical build elsewhere on this engine made. Kept: the base
      image (python:3.11-slim), the wheelhouse cache on the host
      (~/.cache/modelwire/wheels, filled before the first repetition) and the probe of
      the base (~/.cache/modelwire/bases): a cold build needs no network either.
    - rebuild: the 1.1.0 image right after, with the layer cache the cold build left.
    Goal: rebuild <= 0.25x the cold build (median of the per-repetition ratios).
(b) size: the layers the image adds above its base (sum of `docker history` sizes above
    the base image), against the installed size (`du -sb`) of the same venv made on this
    host the image's way (`python -m venv --without-pip`, then `pip --python VENV install
    --no-index` from the same wheelhouse: runtime, model, modelwire). Goal: <= 1.1x (no
    wheelhouse, pip, caches or build tools left in the image).
(c) start: `docker run -d -p 127.0.0.1::50051 IMAGE` (the SDK's containers.run) until
    grpc.health.v1 answers SERVING on the published port (polled every 10 ms), --starts
    times, each container removed before the next. Reference: `modelwire serve BUNDLE`
    as a host process, the same way. Goal: median < 3 s.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from build_report import report  # noqa: E402

PREFIX = "modelwire-bench"
BASE = "python:3.11-slim"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- preparation


def dump_bundles(work: Path) -> dict[str, Path]:
    """iris 1.0.0 (the example as is) and 1.1.0 (retrained, same requirements)."""
    script = (ROOT / "examples" / "iris" / "model.py").read_text()
    retrained = script.replace("random_state=0", "random_state=1").replace(
        "description=", 'version="1.1.0",\n        description='
    )
    assert retrained.count("random_state=1") == 1 and retrained.count('"1.1.0"') == 1
    (work / "iris_v2.py").write_text(retrained)
    bundles = {"1.0.0": work / "iris-1.0.0", "1.1.0": work / "iris-1.1.0"}
    for version, script_path in (
        ("1.0.0", ROOT / "examples" / "iris" / "model.py"),
        ("1.1.0", work / "iris_v2.py"),
    ):
        subprocess.run(
            [sys.executable, str(script_path), str(bundles[version])],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return bundles


def remove_images(client: Any, ids: list[str]) -> int:
    """Remove the bench's tagged images, then the step images of its builds (children
    first); returns how many were removed."""
    import docker.errors

    removed = 0
    for image in client.images.list(name=f"{PREFIX}/iris"):
        for tag in image.tags:
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(tag, force=True)
                removed += 1
    for image_id in reversed(ids):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.images.remove(image_id, force=True)
            removed += 1
    return removed


def timed_build(bundle: Path, tag: str, *, nocache: bool) -> dict[str, Any]:
    from modelwire.containers.images import build_image

    steps: list[tuple[float, str]] = []
    started = time.perf_counter()
    result = build_image(
        bundle,
        tag,
        nocache=nocache,
        progress=lambda line: steps.append((time.perf_counter(), line)),
    )
    ended = time.perf_counter()
    durations = []  # each build step: from its "Step" line to the next one (or the end)
    marks = [(t, line) for t, line in steps if line.startswith("Step ")]
    for i, (t, line) in enumerate(marks):
        durations.append((line, (marks[i + 1][0] if i + 1 < len(marks) else ended) - t))
    return {
        "seconds": ended - started,
        "before_steps_s": (marks[0][0] - started) if marks else math.nan,
        "cached_steps": result.cached_steps,
        "steps": result.steps,
        "image_id": result.image_id,
        "step_images": list(result.step_images),
        "slowest": sorted(durations, key=lambda d: -d[1])[:3],
    }


def layers(client: Any, tag: str) -> list[str]:
    return list(client.images.get(tag).attrs["RootFS"]["Layers"])


def added_size(client: Any, tag: str) -> dict[str, int]:
    """Sizes of the layers above the base: total, the venv's, the bundle's."""
    base = client.images.get(BASE).id
    total = venv = bundle = 0
    for entry in client.api.history(tag):
        if entry["Id"] == base:
            break
        total += entry["Size"]
        if "COPY dir:" in entry["CreatedBy"] or "COPY --from" in entry["CreatedBy"]:
            if "/opt/modelwire/venv" in entry["CreatedBy"]:
                venv += entry["Size"]
            elif "/opt/modelwire/bundle" in entry["CreatedBy"]:
                bundle += entry["Size"]
    return {"total": total, "venv": venv, "bundle": bundle}


def host_venv(bundle: Path, work: Path) -> dict[str, Any]:
    """The image's venv, made the image's way on this host from the same wheelhouse."""
    from modelwire.containers.images import write_context

    ctx = write_context(bundle, work / "context")
    venv = work / "host-venv"
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    wheels = ctx / "wheels"
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    pip += ["-q", "--no-index", "--no-cache-dir", "--disable-pip-version-check"]
    for args in (
        [
            "--find-links",
            str(wheels / "runtime"),
            "-r",
            str(wheels / "runtime" / "requirements.txt"),
        ],
        [
            "--find-links",
            str(wheels / "model"),
            "--find-links",
            str(wheels / "runtime"),
            "-r",
            str(wheels / "model" / "requirements.txt"),
        ],
        # as the Dockerfile does: its dependencies are in already, all but grpcio-tools
        ["--no-deps", "--find-links", str(wheels / "modelwire"), "modelwire"],
    ):
        subprocess.run([*pip, *args], check=True, capture_output=True, timeout=600)
    du = subprocess.run(["du", "-sb", str(venv)], check=True, capture_output=True, text=True)
    bundle_bytes = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    return {"venv_bytes": int(du.stdout.split()[0]), "bundle_bytes": bundle_bytes}


def wait_serving(address: str, started: float, timeout: float = 60) -> float:
    """Seconds from `started` until `address` reports SERVING (polled every 10 ms)."""
    from modelwire.hosting.remote import wait_serving as serving

    serving(address, max(0.0, timeout - (time.perf_counter() - started)), interval=0.01)
    return time.perf_counter() - started


def container_start(client: Any, tag: str) -> dict[str, float]:
    started = time.perf_counter()
    container = client.containers.run(tag, detach=True, ports={"50051/tcp": ("127.0.0.1", None)})
    try:
        running = time.perf_counter() - started
        container.reload()
        port = container.ports["50051/tcp"][0]["HostPort"]
        serving = wait_serving(f"127.0.0.1:{port}", started)
    finally:
        container.remove(force=True)
    return {"run_call_s": running, "serving_s": serving}


def host_start(bundle: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelwire",
            "serve",
            str(bundle),
            "--port",
            "0",
            "--http-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        address = line.rsplit(" ", 1)[-1].strip()
        return wait_serving(address, started)
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    from modelwire import __version__
    from modelwire.containers.images import docker_client

    client = docker_client()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(tempfile.mkdtemp(prefix=f"build-{stamp}-", dir=args.scratch))
    out: dict[str, Any] = {
        "config": {
            "reps": args.reps,
            "starts": args.starts,
            "python": platform.python_version(),
            "modelwire": __version__,
            "engine": client.version()["Version"],
            "cpus": os.cpu_count(),
            "date": stamp,
        },
        "builds": [],
        "starts": [],
        "host_starts": [],
    }
    try:
        log(f"dumping iris 1.0.0 and 1.1.0 into {work}")
        bundles = dump_bundles(work)
        log("filling the host wheelhouse cache (not timed)")
        size_venv = host_venv(bundles["1.0.0"], work)
        step_images: list[str] = []
        for rep in range(args.reps):
            removed = remove_images(client, step_images)
            log(f"rep {rep + 1}/{args.reps}: removed {removed} images; cold build of 1.0.0")
            cold = timed_build(bundles["1.0.0"], f"{PREFIX}/iris:1.0.0", nocache=True)
            log(f"  cold {cold['seconds']:.1f} s; rebuild with 1.1.0")
            warm = timed_build(bundles["1.1.0"], f"{PREFIX}/iris:1.1.0", nocache=False)
            old, new = (
                layers(client, f"{PREFIX}/iris:1.0.0"),
                layers(client, f"{PREFIX}/iris:1.1.0"),
            )
            step_images = cold["step_images"] + warm["step_images"]
            out["builds"].append(
                {
                    "cold": cold,
                    "rebuild": warm,
                    "layers": len(new),
                    "layers_reused": sum(a == b for a, b in zip(old, new, strict=False)),
                }
            )
            log(
                f"  rebuild {warm['seconds']:.1f} s ({warm['cached_steps']}/{warm['steps']} cached)"
            )
        out["size"] = {**added_size(client, f"{PREFIX}/iris:1.0.0"), **size_venv}
        out["base_layers"] = len(client.images.get(BASE).attrs["RootFS"]["Layers"])
        for i in range(args.starts):
            out["starts"].append(container_start(client, f"{PREFIX}/iris:1.0.0"))
            out["host_starts"].append(host_start(bundles["1.0.0"]))
            log(f"start {i + 1}/{args.starts}: {out['starts'][-1]['serving_s']:.2f} s")
        return out
    finally:
        if not args.keep:
            remove_images(
                client,
                [
                    i
                    for b in out["builds"]
                    for i in b["cold"]["step_images"] + b["rebuild"]["step_images"]
                ],
            )
            shutil.rmtree(work, ignore_errors=True)
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="cold/rebuild pairs (3)")
    parser.add_argument("--starts", type=int, default=7, help="container starts (7)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/modelwire-bench"))
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--from-json", type=Path, help="print the tables of an earlier run")
    parser.add_argument("--keep", action="store_true", help="keep the images and the work dir")
    args = parser.parse_args()
    if args.from_json:
        report(json.loads(args.from_json.read_text()))
        return 0
    args.scratch.mkdir(parents=True, exist_ok=True)
    try:
        results = run(args)
    except KeyboardInterrupt:
        return 130
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

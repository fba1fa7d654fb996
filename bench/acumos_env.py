"""The acumos-model-runner baseline: a cached Python 3.9 venv, the dumped Iris model,
and how to start the runner and tell when it is ready.

The venv lives under the scratch directory (default /tmp/modelwire-bench/acumos-venv)
and is reused while its marker file matches bench/acumos-requirements.txt.

    .venv/bin/python bench/acumos_env.py [--scratch DIR]   # prepare only
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from _common import children_of, proc_cpu_s

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "acumos-requirements.txt"
DUMP_SCRIPT = HERE / "acumos_iris_dump.py"
MARKER = ".modelwire-bench-ok"
PB = "application/vnd.google.protobuf"
METHOD_PATH = "/model/methods/classify"


def find_py39(explicit: str | None = None) -> str:
    if explicit:
        candidates = [explicit]
    else:
        candidates = [os.environ.get("PY39")]
        candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python")))
        candidates += sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python"))
        candidates.append(shutil.which("python3.9"))
    for c in candidates:
        if not c or not os.path.exists(c):
            continue
        probe = subprocess.run(
            [c, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return c
    raise RuntimeError(
        f"{explicit} is not a Python 3.9"
        if explicit
        else "the acumos baseline needs Python 3.9 (acumos 1.0.1 requires <3.10); "
        "pass --py39 /path/to/python3.9 or set PY39"
    )


def _fingerprint() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def venv_env(venv: Path) -> dict[str, str]:
    """Environment for processes of the venv: its bin/ first (acumos needs its protoc)."""
    env = dict(os.environ)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env.pop("PYTHONPATH", None)
    return env


def ensure_venv(scratch: Path, py39: str | None, log: Path) -> Path:
    """The acumos venv, created and installed from the pins unless a matching one exists."""
    venv = scratch / "acumos-venv"
    marker = venv / MARKER
    fp = _fingerprint()
    if marker.exists() and marker.read_text().strip() == fp:
        return venv
    python = find_py39(py39)
    print(f"  creating the acumos venv in {venv} (pip log: {log}) ...", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    scratch.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as lf:
        subprocess.run([python, "-m", "venv", str(venv)], check=True, stdout=lf, stderr=lf)
        proc = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-r", str(REQUIREMENTS)],
            stdout=lf,
            stderr=lf,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"pip install into {venv} failed; see {log}")
    marker.write_text(fp + "\n")
    return venv


def ensure_dump(scratch: Path, venv: Path, log: Path) -> Path:
    """The dumped Iris model (acumos' own format), made once per venv."""
    dumps = scratch / "acumos-dump"
    model = dumps / "iris_model"
    stamp = dumps / MARKER
    want = (venv / MARKER).read_text() + hashlib.sha256(DUMP_SCRIPT.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want and (model / "model.zip").exists():
        return model
    if dumps.exists():
        shutil.rmtree(dumps)
    dumps.mkdir(parents=True)
    with open(log, "ab") as lf:
        proc = subprocess.run(
            [str(venv / "bin" / "python"), str(DUMP_SCRIPT), str(dumps)],
            env=venv_env(venv),
            stdout=lf,
            stderr=lf,
            check=False,
            cwd=str(dumps),
        )
    if proc.returncode != 0 or not (model / "model.zip").exists():
        raise RuntimeError(f"dumping the acumos Iris model failed; see {log}")
    stamp.write_text(want)
    return model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runner_argv(venv: Path, model: Path, port: int, workers: int) -> list[str]:
    return [
        str(venv / "bin" / "acumos_model_runner"),
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def iris_request_pb() -> bytes:
    """IrisDataSet{sepal_length: [5.1], ...}: 4 packed repeated doubles, 1 row."""
    import struct

    out = bytearray()
    for number, value in enumerate((5.1, 3.5, 1.4, 0.2), start=1):
        payload = struct.pack("<d", value)
        out += bytes([(number << 3) | 2, len(payload)]) + payload
    return bytes(out)


def ready(port: int) -> bool:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request(
            "POST",
            METHOD_PATH,
            body=iris_request_pb(),
            headers={"Content-Type": PB, "Accept": PB},
        )
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def wait_ready(port: int, alive: object, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready(port):
            return
        if callable(alive) and not alive():
            raise RuntimeError("acumos_model_runner exited before it answered")
        time.sleep(0.1)
    raise RuntimeError(f"acumos_model_runner did not answer on port {port} in {timeout} s")


def wait_workers_idle(pid: int, workers: int, alive: object, timeout: float = 90.0) -> None:
    """Wait until the gunicorn master `pid` has `workers` children, all idle.

    acumos-model-runner does not preload the app: every worker loads the model after
    gunicorn forks it, and the first one to answer says nothing about the others.
    A worker is taken as loaded once its CPU time has not moved for 3 x 0.2 s (a
    sync worker waits in select() between requests).
    """
    deadline = time.monotonic() + timeout
    stable, last = 0, None
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            raise RuntimeError("acumos_model_runner exited while its workers started")
        kids = sorted(children_of(pid))
        now = (kids, [proc_cpu_s(k) for k in kids])
        stable = stable + 1 if len(kids) >= workers and now == last else 0
        if stable >= 3:
            return
        last = now
        time.sleep(0.2)
    raise RuntimeError(f"acumos_model_runner's {workers} workers were not idle in {timeout} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/modelwire-bench"))
    ap.add_argument("--py39", default=None)
    a = ap.parse_args()
    a.scratch.mkdir(parents=True, exist_ok=True)
    log = a.scratch / "acumos-setup.log"
    venv = ensure_venv(a.scratch, a.py39, log)
    model = ensure_dump(a.scratch, venv, log)
    print(f"venv {venv}\nmodel {model}")


if __name__ == "__main__":
    sys.exit(main())

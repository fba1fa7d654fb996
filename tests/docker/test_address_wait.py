"""`modelwire run` waits for `address:` models up to --startup-timeout (no Docker needed).

On Kubernetes the broker's pod may start before its models' pods are ready (their Services
answer only then); compose orders them with health conditions, Kubernetes does not. So run
retries an unreachable address until the timeout instead of failing at once, and only then
reports it like any other unresolvable model."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from modelwire.bundle import dump
from modelwire.runtime.client import connect
from tests.docker.conftest import free_port
from tests.fixtures.models import echo
from tests.servers import ServeProcess, clean_env, modelwire_popen

pytestmark = pytest.mark.timeout(120)

LISTENING = "modelwire broker listening on "


def blueprint(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "adder.yaml"
    path.write_text(
        "name: adder\n"
        f'models:\n  m: {{address: "127.0.0.1:{port}"}}\n'
        "methods:\n  add:\n    steps:\n      sum: {call: m.add, with: $input}\n    output: sum\n"
    )
    return path


def start_run(path: Path, *args: str) -> subprocess.Popen[str]:
    return modelwire_popen(
        "run", str(path), "--port", "0", "--log-format", "json", *args, env=clean_env()
    )


def test_run_waits_for_an_address_model_that_starts_later(tmp_path):
    port = free_port()
    bundle = dump(echo.model(), "echo", tmp_path / "echo")
    broker = start_run(blueprint(tmp_path, port), "--startup-timeout", "60")
    stderr: list[str] = []
    assert broker.stderr is not None and broker.stdout is not None

    def drain() -> None:
        assert broker.stderr is not None
        for line in broker.stderr:
            stderr.append(line)
        broker.stderr.close()

    drained = threading.Thread(target=drain, daemon=True)
    drained.start()
    model = None
    try:
        waiting = f'"message": "waiting for model m at 127.0.0.1:{port} (up to '
        deadline = time.monotonic() + 20
        while waiting not in "".join(stderr):
            assert broker.poll() is None and time.monotonic() < deadline, "".join(stderr)
            time.sleep(0.1)
        time.sleep(1)
        assert broker.poll() is None, "".join(stderr)
        started = time.monotonic()
        model = ServeProcess(str(bundle), "--port", str(port))
        line = broker.stdout.readline()
        if line.startswith("modelwire broker http on "):  # the HTTP face's line comes first
            line = broker.stdout.readline()
        assert line.startswith(LISTENING), "".join(stderr)
        assert time.monotonic() - started < 5  # found soon after it came up
        with connect(line[len(LISTENING) :].strip()) as solution:
            assert solution.add(1.5, 2.0) == 3.5
    finally:
        broker.terminate()
        broker.wait(30)
        broker.stdout.close()
        drained.join(10)
        if model is not None:
            model.kill()


def test_run_gives_up_on_an_address_model_after_the_startup_timeout(tmp_path):
    port = free_port()
    path = blueprint(tmp_path, port)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "modelwire", "run", str(path), "--startup-timeout", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 1
    assert f"error[MW105]: model 'm': nothing is listening on 127.0.0.1:{port}" in proc.stderr
    assert 2 <= elapsed < 15

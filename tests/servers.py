"""Real model servers for tests: in-process (`serve_in_process`) and as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelwire.bundle import dump, load
from modelwire.config import RuntimeConfig
from modelwire.modeling import Model
from modelwire.runtime.server import LISTENING, RunningServer, start


def serve_in_process(model: Model, path: Path, name: str = "m", **config: object) -> RunningServer:
    """Dump `model` to `path`, load it back and serve it on 127.0.0.1, a free port."""
    dump(model, name, path)
    return start(load(path), RuntimeConfig(port=0, **config))  # type: ignore[arg-type]


def health_status(address: str, service: str = "", timeout: float = 5.0) -> str:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


class ServeProcess:
    """`modelwire serve BUNDLE --port 0 ...` as a subprocess.

    Waits for the listening line and for health SERVING; any failure message
    includes the server's captured stderr.
    """

    def __init__(self, bundle: str, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        argv = [sys.executable, "-m", "modelwire", "serve", bundle, "--port", "0",
                "--log-format", "json", *args]
        self.argv = argv
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})},
        )
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.address = self._wait_listening(timeout)
        self._wait_serving(timeout)

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def _wait_listening(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(5)
                raise AssertionError(
                    f"serve exited with {self.proc.returncode} before listening:\n{self.stderr}"
                )
            self.stdout_lines.append(line)
            if line.startswith(LISTENING):
                return line[len(LISTENING):].strip()
        raise AssertionError(f"serve did not announce its address:\n{self.stderr}")

    def _wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if health_status(self.address) == "SERVING":
                    return
            except grpc.RpcError as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"serve never reported SERVING ({last}):\n{self.stderr}")

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

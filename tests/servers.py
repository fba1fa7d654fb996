"""Real model servers for tests: in-process (`serve_in_process`) and as subprocesses
(`ServeProcess`), and `ModelwireProcess`, the subprocess wrapper the broker's and the
catalog's servers share; and the two kinds of address no server answers at
(`closed_port`, `silent_listener`)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from modelwire.bundle import dump, load
from modelwire.bundle.model import Model
from modelwire.config import ClientTls, RuntimeConfig
from modelwire.errors import ServiceError
from modelwire.hosting.remote import wait_serving
from modelwire.runtime.server import LISTENING, RunningServer, start


def serve_in_process(model: Model, path: Path, name: str = "m", **config: object) -> RunningServer:
    """Dump `model` to `path`, load it back and serve it on 127.0.0.1, free ports."""
    dump(model, name, path)
    settings: dict[str, Any] = {"port": 0, "http_port": 0, **config}
    return start(load(path), RuntimeConfig(**settings))


def health_status(address: str, service: str = "", timeout: float = 5.0) -> str:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def closed_port() -> int:
    """A loopback port nothing listens on (a connection to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def silent_listener() -> Iterator[str]:
    """`127.0.0.1:PORT` of a socket that takes TCP connections and never answers on them:
    a server that is there but not serving (a hung process, a port in a firewall's hold)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)  # the kernel completes the handshakes; nobody accepts or reads
        yield f"127.0.0.1:{s.getsockname()[1]}"


TEST_ENV = {"MODELWIRE_HTTP_PORT": "0"}
"""What every test's environment sets: a free HTTP port, as tests bind gRPC on port 0 (the
default 8080 is one port that parallel runs on one machine would fight over)."""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without MODELWIRE_* settings (the developer's shell's), with
    `TEST_ENV`, plus `extra`: for a CLI subprocess started where the autouse `clean_environ`
    does not reach."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    return {**env, **TEST_ENV, **extra}


def modelwire_popen(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """`python -m modelwire ARGS`, its stdout and stderr piped (text); `env` is the whole
    environment (None: this process's)."""
    return subprocess.Popen(
        [sys.executable, "-m", "modelwire", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


class ModelwireProcess:
    """`python -m modelwire ARGS` as a subprocess, once it printed its listening line (and,
    with `serving`, once its health check answers SERVING).

    Its stderr is drained in a thread (a full pipe would block the server's logging) and is
    part of every failure message; stdout is kept line by line up to the listening line.

    Attributes:
        argv: the command line.
        listening_line: the line that announced the address (without its newline).
        address: host:port from that line.
    """

    def __init__(
        self,
        *args: str,
        listening: str,
        what: str,
        timeout: float,
        serving: bool = False,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        """`listening`: the prefix of the line that announces the address; `what`: the command
        as failure messages name it (`serve`, `run`, `catalog serve`); `tls`: how health
        reaches a TLS server."""
        self.what = what
        self.tls = tls
        self.proc = modelwire_popen(*args, env=env, cwd=cwd)
        self.argv: list[str] = self.proc.args  # type: ignore[assignment]
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self.rest_of_stdout = ""
        self.drained = threading.Event()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.listening_line = self._wait_listening(listening, timeout)
        self.address = self.listening_line[len(listening) :].strip()
        if serving:
            self._wait_serving(timeout)

    @property
    def http_address(self) -> str | None:
        """host:port from the HTTP face's line (`... http on HOST:PORT`) before the listening
        line; None if it printed none."""
        for line in self.stdout_lines:
            head, sep, address = line.partition(" http on ")
            if sep and head.startswith("modelwire "):
                return address.strip()
        return None

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            for line in self.proc.stderr:
                self.stderr_lines.append(line)
        finally:
            self.proc.stderr.close()
            self.drained.set()

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def _wait_listening(self, listening: str, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(10)
                self.drained.wait(10)
                raise AssertionError(
                    f"{self.what} exited with {self.proc.returncode} before listening:\n"
                    f"{self.stderr}"
                )
            self.stdout_lines.append(line)
            if line.startswith(listening):
                return line.rstrip("\n")
        raise AssertionError(f"{self.what} did not announce its address:\n{self.stderr}")

    def _wait_serving(self, timeout: float) -> None:
        def gone() -> str | None:
            code = self.proc.poll()
            return None if code is None else f"{self.what} exited with {code} before SERVING"

        try:
            wait_serving(self.address, timeout, alive=gone, what=self.what, tls=self.tls)
        except ServiceError as exc:
            self.drained.wait(5)  # its last words, before they are quoted
            raise AssertionError(f"{exc}:\n{self.stderr}") from None

    def _close_stdout(self) -> None:
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for the exit status; the rest of stdout is kept in `rest_of_stdout`."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.rest_of_stdout = self.proc.stdout.read()
        self._close_stdout()
        self.drained.wait(10)
        return code

    def kill(self) -> None:
        """SIGKILL if still running, then wait for its stderr to end."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_stdout()
        self.drained.wait(10)

    close = kill


class ServeProcess(ModelwireProcess):
    """`modelwire serve BUNDLE --port 0 --http-port 0 ...` as a subprocess.

    Waits for the listening line and for health SERVING; any failure message
    includes the server's captured stderr. `kill` (and `close`): SIGKILL; a supervisor's
    workers follow it (they ask for SIGTERM on its death).
    """

    def __init__(
        self,
        bundle: str,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
        tls: ClientTls | None = None,
    ) -> None:
        super().__init__(
            "serve",
            bundle,
            "--port",
            "0",
            "--http-port",
            "0",
            "--log-format",
            "json",
            *args,
            listening=LISTENING,
            what="serve",
            timeout=timeout,
            serving=True,
            env={**os.environ, **(env or {})},
            tls=tls,
        )

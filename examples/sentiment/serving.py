"""Run a pulled bundle as a service the way its user would, and call it through generated stubs.

`Service.local(bundle)` runs `modelwire serve BUNDLE --port 0 --http-port 0` (a local
process); `Service.docker(bundle, image)` runs `modelwire build BUNDLE -t IMAGE` and
`docker run`, both ports published on loopback. Either waits until the service reports
SERVING over grpc.health.v1 and stops it on close (SIGTERM for the process, `docker rm
-f` for the container). `Stubs` imports the modules `modelwire stubs` wrote and calls
the model's rpc with them: grpcio and protobuf only, as any application would;
`score_http` makes the same calls over the HTTP face (Connect, JSON), with the standard
library only.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["Service", "ServiceError", "Stubs", "modelwire", "score_http", "shown"]

LISTENING = "modelwire runtime listening on "  # the line `modelwire serve` announces itself by
HTTP_LISTENING = "modelwire runtime http on "  # and the one before it, for its HTTP face
STARTUP = 300.0  # seconds a service may take to report SERVING (a cold image build is apart)


class ServiceError(Exception):
    """A command failed, or the service did not come up; the message says which and why."""


def _tail(text: str, lines: int = 3) -> str:
    return " / ".join(text.strip().splitlines()[-lines:])


def shown(args: Sequence[str]) -> str:
    """A command line as printed: the value of a --token is not."""
    return " ".join("$TOKEN" if i and args[i - 1] == "--token" else a for i, a in enumerate(args))


def modelwire(*args: str, timeout: float = 1800) -> str:
    """Run `modelwire ARGS` (this interpreter's) and return its stdout.

    Raises:
        ServiceError: it exited non-zero; the message holds the end of its stderr.
    """
    print(f"$ modelwire {shown(args)}", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "modelwire", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise ServiceError(
            f"'modelwire {args[0]}' failed ({proc.returncode}): {_tail(proc.stderr)}"
        )
    return proc.stdout


def _serving(address: str) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class Service:
    """A running model service at `address` (host:port); `close()` stops it."""

    def __init__(self, address: str, stop: Callable[[], None], what: str, http: str) -> None:
        self.address = address
        self.http = http  # host:port of its HTTP face
        self._stop = stop
        self.what = what

    @classmethod
    def local(cls, bundle: Path, log: Path) -> Service:
        """`modelwire serve BUNDLE --port 0 --http-port 0`, its stderr (the server's log)
        into `log`."""
        argv = ["serve", str(bundle), "--port", "0", "--http-port", "0", "--log-format", "json"]
        print(f"$ modelwire {' '.join(argv)} &", flush=True)
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "modelwire", *argv],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert proc.stdout is not None
        address, http = _announced(proc.stdout)

        def stop() -> None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()

        if address is None or http is None:
            stop()
            raise ServiceError(
                f"'modelwire serve' exited before listening: {_tail(log.read_text())}"
            )
        service = cls(address, stop, "a local 'modelwire serve' process", http)
        service._wait(lambda: proc.poll() is None, lambda: _tail(log.read_text()))
        return service

    @classmethod
    def docker(cls, bundle: Path, image: str, base: str | None = None) -> Service:
        """`modelwire build BUNDLE -t IMAGE`, then the image run with its port on loopback."""
        modelwire("build", str(bundle), "-t", image, *(["--base", base] if base else []))
        run = ["docker", "run", "-d", "-p", "127.0.0.1::50051", "-p", "127.0.0.1::8080", image]
        print(f"$ {' '.join(run)}", flush=True)
        container = _docker(run).strip()

        def stop() -> None:
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)

        try:
            # "127.0.0.1:32768" (one line per address family the port is published on)
            published = _docker(["docker", "port", container, "50051/tcp"]).split()[0]
            http = _docker(["docker", "port", container, "8080/tcp"]).split()[0]
            service = cls(published, stop, f"container {container[:12]} of {image}", http)
            service._wait(
                lambda: (
                    _docker(["docker", "inspect", "-f", "{{.State.Running}}", container])
                    .strip()
                    .lower()
                    == "true"
                ),
                lambda: _tail(_docker(["docker", "logs", container], stderr=True)),
            )
        except BaseException:
            stop()
            raise
        return service

    def _wait(self, alive: Callable[[], bool], log: Callable[[], str]) -> None:
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            if _serving(self.address):
                return
            if not alive():
                self.close()
                raise ServiceError(f"{self.what} exited before serving: {log()}")
            time.sleep(0.2)
        self.close()
        raise ServiceError(f"{self.what} did not report SERVING in {STARTUP:.0f} s: {log()}")

    def close(self) -> None:
        self._stop()

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _announced(stdout: TextIO) -> tuple[str | None, str | None]:
    """The gRPC and HTTP addresses `modelwire serve` announced (HTTP's line comes first)."""
    http = None
    for line in stdout:
        if line.startswith(HTTP_LISTENING):
            http = line[len(HTTP_LISTENING) :].strip()
        elif line.startswith(LISTENING):
            return line[len(LISTENING) :].strip(), http
    return None, http


def _docker(argv: list[str], stderr: bool = False) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise ServiceError(
            f"'{' '.join(argv[:2])}' failed ({proc.returncode}): {_tail(proc.stderr)}"
        )
    return proc.stdout + (proc.stderr if stderr else "")


class Stubs:
    """The Python modules `modelwire stubs BUNDLE -o DIR` wrote, imported from DIR."""

    def __init__(self, directory: Path, service: str) -> None:
        """`service`: the full service name the catalog lists, e.g. `pkg.v1.NameService`."""
        sys.path.insert(0, str(directory))
        try:
            self.messages: ModuleType = importlib.import_module("model_pb2")
            self.services: ModuleType = importlib.import_module("model_pb2_grpc")
        finally:
            sys.path.remove(str(directory))
        self.stub_class: Any = getattr(self.services, service.rsplit(".", 1)[-1] + "Stub")

    def score(self, address: str, texts: Sequence[str], batch: int = 100) -> list[float]:
        """The model's `Score` rpc over `texts`, `batch` texts a request."""
        out: list[float] = []
        with grpc.insecure_channel(address) as channel:
            stub = self.stub_class(channel)
            for i in range(0, len(texts), batch):
                request = self.messages.ScoreRequest(texts=list(texts[i : i + batch]))
                out.extend(stub.Score(request, timeout=300).value)
        return out


def score_http(address: str, service: str, texts: Sequence[str], batch: int = 100) -> list[float]:
    """The same `Score` calls as `Stubs.score`, over the HTTP face at `address` (host:port):
    Connect's unary call, `POST /<package>.<Service>/Score` with a JSON body."""
    out: list[float] = []
    url = f"http://{address}/{service}/Score"
    for i in range(0, len(texts), batch):
        body = json.dumps({"texts": list(texts[i : i + batch])}).encode()
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=300) as reply:
            out.extend(float(v) for v in json.loads(reply.read())["value"])
    return out

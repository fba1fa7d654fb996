"""One model served several ways, behind one interface, for tests that run a scenario
through every path: in this process or as a `modelwire serve` subprocess, with the sync
(thread pool) or the aio (asyncio) server.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelwire.bundle import load
from modelwire.config import RuntimeConfig
from modelwire.runtime.client import RemoteModel, connect
from modelwire.runtime.server import RunningAioServer, RunningServer, start, start_aio
from tests.hosting.client import Client as HttpClient
from tests.servers import ServeProcess

# (where, server kind) with ids, for `pytest.mark.parametrize` and fixture params
PATHS = [
    pytest.param(("in-process", "sync"), id="in-process-sync"),
    pytest.param(("in-process", "aio"), id="in-process-aio"),
    pytest.param(("subprocess", "sync"), id="subprocess-sync"),
    pytest.param(("subprocess", "aio"), id="subprocess-aio"),
]
SERVER_KINDS = [pytest.param("sync", id="sync"), pytest.param("aio", id="aio")]


ServeSubprocess = ServeProcess  # the subprocess server path (tests/servers.py)


class AioInProcess:
    """`start_aio()` on an event loop of its own, in a daemon thread."""

    def __init__(self, bundle: Path, config: RuntimeConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(start_aio(load(bundle), config), self.loop)
        self.running: RunningAioServer = started.result(30)
        self._stopped = False

    @property
    def address(self) -> str:
        return self.running.address

    @property
    def metrics_port(self) -> int | None:
        return self.running.metrics_port

    def stop(self, grace: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        asyncio.run_coroutine_threadsafe(self.running.stop(grace), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@dataclass
class Served:
    """A running model service, however it runs."""

    address: str
    where: str  # "in-process" or "subprocess"
    kind: str  # "sync" or "aio"
    service: str  # full name of the model's gRPC service
    stop: Callable[[], None]
    process: ServeSubprocess | None = None
    handle: Any = None  # RunningServer or AioInProcess, in process
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.where}-{self.kind}"

    @property
    def http_address(self) -> str | None:
        """host:port of the HTTP face; None if it serves none."""
        if self.process is not None:
            return self.process.http_address
        running = self.handle.running if isinstance(self.handle, AioInProcess) else self.handle
        port = running.http_port
        return None if port is None else f"{self.address.rsplit(':', 1)[0]}:{port}"

    def http(self) -> HttpClient:
        """A plain HTTP/1.1 client of the HTTP face, made once per server."""
        if "http" not in self.extra:
            address = self.http_address
            assert address is not None, "this server has no HTTP face"
            host, _, port = address.rpartition(":")
            self.extra["http"] = HttpClient(int(port), host.strip("[]"))
        return self.extra["http"]  # type: ignore[no-any-return]

    def client(self) -> RemoteModel:
        """A `connect()`ed client, made once per server (connecting takes ~0.2 s)."""
        if "client" not in self.extra:
            self.extra["client"] = connect(self.address)
        return self.extra["client"]  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the client (if any) and stop the server."""
        for key in ("client", "http"):
            client = self.extra.pop(key, None)
            if client is not None:
                client.close()
        self.stop()

    def stderr(self) -> str:
        """The subprocess's log so far ('' in process), for failure messages."""
        return self.process.stderr if self.process is not None else ""

    def rpc(self, name: str, *, timeout: float = 10.0) -> Callable[[bytes], bytes]:
        """A raw-bytes caller of one rpc of the model's service, on a channel of its own."""
        channel = grpc.insecure_channel(self.address)
        call = channel.unary_unary(f"/{self.service}/{name}")

        def invoke(request: bytes) -> bytes:
            return call(request, timeout=timeout)  # type: ignore[no-any-return]

        invoke.channel = channel  # type: ignore[attr-defined]
        return invoke


def service_name(bundle: Path) -> str:
    manifest = json.loads((bundle / "modelwire.json").read_text())
    return str(manifest["service"])


def serve(bundle: Path, where: str, kind: str, *args: str, **config: Any) -> Served:
    """Serve `bundle` on 127.0.0.1, a free port.

    `config` holds RuntimeConfig fields, passed as the matching `modelwire serve` flags to a
    subprocess (``max_message_mb=1`` -> ``--max-message-mb 1``); `args` are more flags, for
    a subprocess only.
    """
    service = service_name(bundle)
    if where == "subprocess":
        flags = [f for k, v in config.items() for f in (f"--{k.replace('_', '-')}", str(v))]
        proc = ServeSubprocess(str(bundle), "--server", kind, *flags, *args)

        def stop_process() -> None:
            if proc.proc.poll() is None:
                try:
                    proc.terminate(30)
                except Exception:
                    proc.kill()
                    raise

        return Served(proc.address, where, kind, service, stop_process, process=proc)
    assert not args, "flags are for subprocesses; give RuntimeConfig fields instead"
    cfg = RuntimeConfig(**{"port": 0, "http_port": 0, "server": kind, **config})
    if kind == "sync":
        running: RunningServer = start(load(bundle), cfg)
        return Served(
            running.address, where, kind, service, lambda: running.stop(0), handle=running
        )
    aio = AioInProcess(bundle, cfg)
    return Served(aio.address, where, kind, service, lambda: aio.stop(0), handle=aio)


def json_logs(text: str) -> list[dict[str, Any]]:
    """The JSON log records in a server's stderr; fails on any line that is not one."""
    records = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line!r}\n--- stderr ---\n{text}") from None
    return records


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def process_alive(pid: int) -> bool:
    """Whether `pid` names a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def has_ipv6_loopback() -> bool:
    """Whether this machine can bind ::1 (IPv6 is sometimes off in containers)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True

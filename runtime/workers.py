"""Several worker processes serving one port (SO_REUSEPORT), and their supervisor.

Every worker serves gRPC and (unless it is off) HTTP, each on the one port the supervisor
reserved for it. The kernel spreads new connections over the workers, so a CPU-bound
model uses more than one core despite the GIL. Workers are fresh interpreters (`python -m
modelwire.runtime.workers`, `modelwire.runtime.worker_process`), never forks: grpcio
does not survive fork.

The supervisor announces the service once every worker is SERVING (a worker that fails
to start then is reported once, with its one-line error, and `serve` exits), serves the
workers' metrics merged (prometheus-client's multiprocess mode: one directory per run,
see `modelwire.hosting.metrics.WorkerMetrics`), and supervises them as `modelwire run`
does its models (`modelwire.hosting.supervisor`): a worker that exits or is killed is
logged once, with its status or signal and its last log lines, and replaced (with
backoff when it keeps failing; given up after `max_restarts` failed starts in a row);
each worker's health is probed on a loopback port of its own (`modelwire.hosting.probe`),
so one that stops answering (SIGSTOP, a deadlock) is killed and replaced while the others
keep serving the shared port. `serve` ends with status 1 only when every worker has been
given up on. On SIGTERM it stops them all, waits for them and removes the metrics
directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from modelwire.bundle import read_manifest
from modelwire.config import RuntimeConfig
from modelwire.errors import ConfigError, ModelwireError
from modelwire.hosting.metrics import WorkerMetrics
from modelwire.hosting.metrics_http import MetricsServer
from modelwire.hosting.probe import HealthProbe, Probed
from modelwire.hosting.process import follow_parent, stop_on_signal
from modelwire.hosting.supervisor import RestartPolicy, StartFailed, Supervisor
from modelwire.runtime.server import HTTP_LISTENING, LISTENING
from modelwire.runtime.worker_process import WorkerProcess

__all__ = ["supervise"]

logger = logging.getLogger(__name__)

_READY_TIMEOUT = 120.0


def _reserve_port(host: str, port: int, key: str = "port") -> socket.socket:
    """Bind (not listen) a SO_REUSEPORT socket: picks the port if 0, and holds it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(key, port, f"cannot bind {host}:{port} ({exc.strerror})") from exc
    return sock


class _Workers:
    """The workers of one run: every process started (to stop them), and their probes."""

    def __init__(self, bundle: str, config: RuntimeConfig, metrics: WorkerMetrics | None):
        self.bundle = bundle
        self.config = config
        self.metrics = metrics
        self.started: list[WorkerProcess] = []
        self.current: dict[str, WorkerProcess] = {}
        self.probes: dict[str, HealthProbe] = {}
        self.supervisor: Supervisor | None = None
        self._lock = threading.Lock()
        self._stopping = False

    def spawn(self, name: str) -> WorkerProcess:
        with self._lock:
            if self._stopping:
                raise RuntimeError("the workers are stopping")
            worker = self.current[name] = WorkerProcess(
                int(name), self.bundle, self.config, self.metrics
            )
            self.started.append(worker)
        return worker

    def changed(self, name: str, address: str | None, why: str) -> None:
        """The supervisor's news: probe the worker's new health address, or stop."""
        old = self.probes.pop(name, None)
        if old is not None:
            old.stop()
        if address is not None:
            self.probe(name, address)
        elif self.metrics is not None:  # its counts stay; its live gauges go
            self.metrics.mark_dead(self.current[name].proc.pid)

    def probe(self, name: str, address: str) -> None:
        because = f"stopped answering its health checks for {self.config.liveness_seconds:g} s"

        def unresponsive() -> None:
            if self.supervisor is not None:
                self.supervisor.kill(name, address, because)

        def noted(state: Probed) -> None:
            if state is Probed.UNRESPONSIVE:
                logger.warning("worker %s is not answering its health checks", name)

        self.probes[name] = HealthProbe(
            address,
            on_change=noted,
            on_unresponsive=unresponsive,
            liveness=self.config.liveness_seconds,
        ).start()

    def stop(self, grace: float) -> list[int]:
        """SIGTERM every worker still running, wait (SIGKILL stragglers); their codes."""
        with self._lock:
            self._stopping = True
            workers = [w for w in self.started if w.proc.poll() is None]
        for p in self.probes.values():
            p.stop()
        for w in workers:
            w.proc.send_signal(signal.SIGTERM)
        codes = []
        for w in workers:
            try:
                codes.append(w.proc.wait(grace + 5))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                codes.append(w.proc.wait())
        return codes


def supervise(
    bundle: str, config: RuntimeConfig, *, announce: Callable[[str], None] | None = None
) -> int:
    """Run `config.workers` worker processes on one port until SIGTERM/SIGINT."""
    manifest = read_manifest(bundle)  # fail fast, before spawning anything
    holder = _reserve_port(config.host, config.port)
    port = holder.getsockname()[1]
    try:
        http_holder = (
            _reserve_port(config.host, config.http_port, "http_port")
            if config.http_port is not None
            else None
        )
    except BaseException:
        holder.close()
        raise
    http_port = http_holder.getsockname()[1] if http_holder is not None else None
    config = dataclasses.replace(config, port=port, http_port=http_port)
    with stop_on_signal() as (stop, received):
        # every worker's /metrics reads the run's directory as --metrics-port does
        wanted = config.metrics_port is not None or config.http_port is not None
        metrics = WorkerMetrics() if wanted else None
        metrics_server = None
        workers = _Workers(bundle, config, metrics)
        supervisor = None
        status = 0
        try:
            if metrics is not None and config.metrics_port is not None:
                # bound first: a busy port fails before any spawn
                metrics_server = MetricsServer(
                    config.host, config.metrics_port, metrics.exposition, tls=config.tls
                )
            names = [str(i) for i in range(config.workers)]
            for name in names:
                workers.spawn(name)
            deadline = time.monotonic() + _READY_TIMEOUT
            addresses = {}
            for name in names:
                try:
                    addresses[name] = workers.current[name].wait_serving(
                        _READY_TIMEOUT, stop, deadline=deadline
                    )
                except StartFailed as exc:
                    if stop.is_set():
                        break
                    raise ModelwireError(str(exc)) from None  # every worker fails alike
            if stop.is_set():  # SIGTERM or Ctrl-C while starting: stop cleanly
                name = signal.Signals(received[0]).name
                logger.info("%s received while starting: stopping", name)
                return 0
            holder.close()
            if http_holder is not None:
                http_holder.close()
            host = f"[{config.host}]" if ":" in config.host else config.host
            logger.info(
                "serving %s %s with %d workers on %s:%d",
                manifest.name,
                manifest.version,
                config.workers,
                host,
                port,
            )
            if metrics_server is not None:
                logger.info(
                    "metrics at %s",
                    metrics_server.url,
                    extra={"metrics_port": metrics_server.port},
                )
            supervisor = workers.supervisor = Supervisor(
                "worker",
                workers.spawn,
                RestartPolicy(backoff=config.restart_backoff, max_restarts=config.max_restarts),
                _READY_TIMEOUT,
                workers.changed,
            )
            for name in names:
                supervisor.adopt(name, workers.current[name], addresses[name])
                workers.probe(name, addresses[name])
            if announce is not None:
                if http_port is not None:
                    announce(f"{HTTP_LISTENING} {host}:{http_port}")
                announce(f"{LISTENING} {host}:{port}")
            while not stop.wait(0.5):
                if len(supervisor.failed()) == len(names):
                    logger.error("every worker has failed: stopping")
                    status = 1
                    break
            else:
                logger.info(
                    "%s received: stopping %d workers",
                    signal.Signals(received[0]).name,
                    len(names),
                )
        finally:
            if supervisor is not None:
                supervisor.stop()
            codes = workers.stop(config.grace_seconds)
            if metrics_server is not None:
                metrics_server.close()
            if metrics is not None:
                metrics.close()
            holder.close()
            if http_holder is not None:
                http_holder.close()
        return status or (0 if all(c == 0 for c in codes) else 1)


def _worker_main(argv: list[str]) -> int:
    from modelwire import _logging
    from modelwire.runtime.server import serve

    follow_parent()
    bundle, config = argv[0], RuntimeConfig(**json.loads(argv[1]))
    _logging.configure(
        os.environ.get("MODELWIRE_LOG_LEVEL", "info"),
        os.environ.get("MODELWIRE_LOG_FORMAT") or None,
    )

    def ready(port: int, also: tuple[int, ...]) -> None:
        print(f"ready {port} {also[0]}", flush=True)

    # its metrics reach the supervisor through the run's directory (PROMETHEUS_MULTIPROC_DIR);
    # its own loopback port is where the supervisor checks this worker's health
    try:
        return serve(bundle, config, reuse_port=True, on_ready=ready, also=("127.0.0.1:0",))
    except ModelwireError as exc:
        print(f"failed {json.dumps(str(exc))}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))

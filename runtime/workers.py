"""Several worker processes serving one port (SO_REUSEPORT), and their supervisor.

Every worker serves gRPC and (unless it is off) HTTP, each on the one port the supervisor
reserved for it. The kernel spreads new connections over the workers, so a CPU-bound
model uses more than one core despite the GIL. Workers are fresh interpreters (`python -m
modelwire.runtime.workers`), never forks: grpcio does not survive fork.

Each worker reports ``ready <port>`` on stdout once SERVING, or ``failed <JSON string>``
with the one-line error it stops on (a broken bundle, which the supervisor then reports
once, without a traceback). The supervisor announces the service, serves the workers'
metrics merged (prometheus-client's multiprocess mode: one directory per run, see
`modelwire.hosting.metrics.WorkerMetrics`), restarts a worker that dies, and on SIGTERM
stops them all, waits for them and removes the metrics directory.
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
from modelwire.hosting.metrics import ENV_MULTIPROC_DIR, WorkerMetrics
from modelwire.hosting.metrics_http import MetricsServer
from modelwire.hosting.process import ENV_PARENT_PID, follow_parent, stop_on_signal

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


@dataclasses.dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[str]
    ready: threading.Event = dataclasses.field(default_factory=threading.Event)
    error: str | None = None  # what the worker failed on, as it reported it
    reader: threading.Thread | None = None

    def failure(self) -> str | None:
        """The error an exited worker reported (once its stdout is read to the end)."""
        if self.reader is not None:
            self.reader.join(5)
        return self.error


def _spawn(
    index: int, bundle: str, config: RuntimeConfig, metrics: WorkerMetrics | None
) -> _Worker:
    cfg = dataclasses.replace(config, workers=1, metrics_port=None)
    args = json.dumps(dataclasses.asdict(cfg))
    env = {k: v for k, v in os.environ.items() if k != ENV_MULTIPROC_DIR}
    env.update(metrics.env if metrics is not None else {})  # else: counted in memory only
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelwire.runtime.workers", bundle, args],
        stdout=subprocess.PIPE,
        text=True,
        env={**env, "MODELWIRE_WORKER_INDEX": str(index), ENV_PARENT_PID: str(os.getpid())},
    )
    worker = _Worker(index, proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if parts[:1] == ["ready"]:
                worker.ready.set()
            elif parts[:1] == ["failed"]:
                worker.error = str(json.loads(line.split(" ", 1)[1]))

    worker.reader = threading.Thread(target=read, daemon=True, name=f"worker-{index}-stdout")
    worker.reader.start()
    return worker


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
        workers: list[_Worker] = []
        # every worker's /metrics reads the run's directory as --metrics-port does
        wanted = config.metrics_port is not None or config.http_port is not None
        metrics = WorkerMetrics() if wanted else None
        metrics_server = None
        try:
            if metrics is not None and config.metrics_port is not None:
                # bound first: a busy port fails before any spawn
                metrics_server = MetricsServer(config.host, config.metrics_port, metrics.exposition)
            workers.extend(_spawn(i, bundle, config, metrics) for i in range(config.workers))
            deadline = time.monotonic() + _READY_TIMEOUT
            for w in workers:
                while not w.ready.wait(0.1):
                    if w.proc.poll() is not None:
                        error = w.failure()
                        if error is not None:  # every worker fails alike: report it once
                            raise ModelwireError(error)
                        raise ModelwireError(
                            f"worker {w.index} exited with status {w.proc.returncode} "
                            "before it was ready; its log is above"
                        )
                    if stop.is_set():
                        break
                    if time.monotonic() > deadline:
                        raise ModelwireError(f"worker {w.index} was not ready in time")
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
            if announce is not None:
                if http_port is not None:
                    announce(f"modelwire runtime http on {host}:{http_port}")
                announce(f"modelwire runtime listening on {host}:{port}")
            while not stop.wait(0.5):
                for i, w in enumerate(workers):
                    if w.proc.poll() is not None:
                        error = w.failure()
                        logger.error(
                            "worker %d exited with status %s%s; starting a new one",
                            w.index,
                            w.proc.returncode,
                            f" ({error})" if error else "",
                        )
                        if metrics is not None:  # its counts stay; its live gauges go
                            metrics.mark_dead(w.proc.pid)
                        workers[i] = _spawn(w.index, bundle, config, metrics)
            logger.info(
                "%s received: stopping %d workers", signal.Signals(received[0]).name, len(workers)
            )
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    w.proc.send_signal(signal.SIGTERM)
            codes = []
            for w in workers:
                try:
                    codes.append(w.proc.wait(config.grace_seconds + 5))
                except subprocess.TimeoutExpired:
                    w.proc.kill()
                    codes.append(w.proc.wait())
            if metrics_server is not None:
                metrics_server.close()
            if metrics is not None:
                metrics.close()
            holder.close()
            if http_holder is not None:
                http_holder.close()
        return 0 if all(c == 0 for c in codes) else 1


def _worker_main(argv: list[str]) -> int:
    from modelwire import _logging
    from modelwire.runtime.server import serve

    follow_parent()
    bundle, config = argv[0], RuntimeConfig(**json.loads(argv[1]))
    _logging.configure(
        os.environ.get("MODELWIRE_LOG_LEVEL", "info"),
        os.environ.get("MODELWIRE_LOG_FORMAT") or None,
    )

    def ready(port: int) -> None:
        print(f"ready {port}", flush=True)

    # its metrics reach the supervisor through the run's directory (PROMETHEUS_MULTIPROC_DIR)
    try:
        return serve(bundle, config, reuse_port=True, on_ready=ready)
    except ModelwireError as exc:
        print(f"failed {json.dumps(str(exc))}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))

"""One worker process of `modelwire serve --workers N`, as its supervisor sees it.

A worker is a fresh interpreter (`python -m modelwire.runtime.workers`, never a fork:
grpcio does not survive fork) that serves the shared port and, besides, a loopback port
of its own, where the supervisor checks the health of that one worker. It reports on
stdout ``ready <port> <health port>`` once SERVING, or ``failed <JSON string>`` with the
one-line error it stops on. Its log (stderr) passes through to the supervisor's stderr
as it is, its last lines kept to be quoted when it ends.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time

from modelwire.config import RuntimeConfig
from modelwire.errors import ServiceError
from modelwire.hosting.metrics import ENV_MULTIPROC_DIR, WorkerMetrics
from modelwire.hosting.process import ENV_PARENT_PID
from modelwire.hosting.remote import wait_serving
from modelwire.hosting.supervisor import StartFailed, describe_status

__all__ = ["WorkerProcess"]

_TAIL = 10


def _message(line: str) -> str:
    """A worker's JSON log line as its message (the line itself if it is not JSON)."""
    try:
        doc = json.loads(line)
    except ValueError:
        return line
    return str(doc.get("message", line)) if isinstance(doc, dict) else line


class WorkerProcess:
    """One worker: its process, readiness, health address and last log lines."""

    def __init__(
        self, index: int, bundle: str, config: RuntimeConfig, metrics: WorkerMetrics | None
    ) -> None:
        self.index = index
        cfg = dataclasses.replace(config, workers=1, metrics_port=None)
        args = json.dumps(dataclasses.asdict(cfg))
        env = {k: v for k, v in os.environ.items() if k != ENV_MULTIPROC_DIR}
        env.update(metrics.env if metrics is not None else {})  # else: counted in memory only
        env.update({"MODELWIRE_WORKER_INDEX": str(index), ENV_PARENT_PID: str(os.getpid())})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelwire.runtime.workers", bundle, args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.ready = threading.Event()
        self.health_address: str | None = None
        self.error: str | None = None  # what the worker failed on, as it reported it
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        self._stdout = threading.Thread(target=self._read_stdout, daemon=True)
        self._stderr = threading.Thread(target=self._read_stderr, daemon=True)
        self._stdout.start()
        self._stderr.start()

    @property
    def what(self) -> str:
        return f"pid {self.proc.pid}"

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts[:1] == ["ready"] and len(parts) == 3:
                self.health_address = f"127.0.0.1:{parts[2]}"
                self.ready.set()
            elif parts[:1] == ["failed"]:
                self.error = str(json.loads(line.split(" ", 1)[1]))
        self.proc.stdout.close()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            sys.stderr.write(line)  # the worker's own log line, in its own format
            sys.stderr.flush()
            if line.strip():
                self.tail.append(_message(line.rstrip("\n")))
        self.proc.stderr.close()

    def failure(self) -> str | None:
        """The error an exited worker reported (once its stdout is read to the end)."""
        self._stdout.join(5)
        return self.error

    def wait_serving(
        self,
        timeout: float,
        cancelled: threading.Event | None = None,
        *,
        deadline: float | None = None,
    ) -> str:
        """Wait until the worker is ready and SERVING; its health address.

        Raises:
            StartFailed: it ended (with the error it reported, if any), did not serve in
                time, or `cancelled` was set.
        """
        if deadline is None:
            deadline = time.monotonic() + timeout

        def alive() -> str | None:
            if cancelled is not None and cancelled.is_set():
                return f"worker {self.index}: the start was cancelled"
            if self.proc.poll() is None:
                return None
            return self.failure() or (
                f"worker {self.index} {self.ended()} before it was ready; its log is above"
            )

        while not self.ready.wait(0.05):
            if (why := alive()) is not None:
                raise StartFailed(why)
            if time.monotonic() > deadline:
                raise StartFailed(f"worker {self.index} was not ready in time")
        assert self.health_address is not None
        try:
            return wait_serving(
                self.health_address,
                max(0.0, deadline - time.monotonic()),
                alive=alive,
                what=f"worker {self.index}",
            )
        except ServiceError as exc:
            raise StartFailed(str(exc)) from None

    def wait(self) -> None:
        self.proc.wait()

    def ended(self) -> str:
        self._stderr.join(5)  # its last words, before they are quoted
        return describe_status(self.proc.returncode)

    def last_lines(self) -> list[str]:
        self._stderr.join(5)
        return list(self.tail)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

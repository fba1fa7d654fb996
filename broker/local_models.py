"""The embedded default of `modelwire run`: bundle models as local `modelwire serve`
processes, each on a free loopback port.

`LocalModels.start()` starts every model at once and waits until each reports SERVING;
`spawn(name)` starts one more process of a model (what its supervisor does after the
first one ended, `modelwire.hosting.supervisor`), which comes up on a port of its own:
the router then switches to the new address (`modelwire.broker.endpoints`). A new port
rather than the old one, because another program may take a freed port meanwhile, and
a model that comes back on a new address cannot be confused with its predecessor.

Each child asks the kernel for SIGTERM when this process dies (MODELWIRE_PARENT_PID,
see `modelwire.hosting.process.follow_parent`), so even a SIGKILLed broker leaves no
model processes behind. Their stderr is relayed into the broker's log, each record
naming its model (`modelwire.broker.model_logs`), and its last lines are kept to be
quoted when a process ends.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from modelwire.errors import ServiceError
from modelwire.hosting.process import ENV_PARENT_PID, uninterrupted
from modelwire.hosting.remote import wait_serving
from modelwire.hosting.supervisor import StartFailed, describe_status

__all__ = ["LocalModels", "LocalProcess"]

logger = logging.getLogger(__name__)

_MODEL_LISTENING = "modelwire runtime listening on"
_TAIL = 10


class LocalProcess:
    """One `modelwire serve --port 0` process of a bundle model (an `Instance`)."""

    def __init__(
        self,
        name: str,
        path: Path,
        max_message_mb: int,
        relay: Callable[[str, str], str | None],
    ) -> None:
        self.name = name
        self.path = path
        self.relay = relay
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelwire",
                "serve",
                str(path),
                "--port",
                "0",
                "--host",
                "127.0.0.1",
                "--max-message-mb",
                str(max_message_mb),
                "--no-http",  # the broker calls its models over gRPC only
                "--log-format",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, ENV_PARENT_PID: str(os.getpid())},
        )
        self.address: str | None = None
        self.listening = threading.Event()
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        self.stderr_done = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def what(self) -> str:
        return f"pid {self.proc.pid}"

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_MODEL_LISTENING):
                self.address = line[len(_MODEL_LISTENING) :].strip()
                self.listening.set()
        self.proc.stdout.close()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            for line in self.proc.stderr:
                shown = self.relay(self.name, line)
                if shown is not None:
                    self.tail.append(shown)
            self.proc.stderr.close()
        finally:
            self.stderr_done.set()

    def gone(self) -> str | None:
        """Why it ended before serving (its status and last words), or None while it runs."""
        if self.proc.poll() is None:
            return None
        return (
            f"model {self.name!r} ({self.path}) {self.ended()} before serving:\n"
            + "\n".join(self.last_lines())
        ).strip()

    def wait_serving(
        self,
        timeout: float,
        cancelled: threading.Event | None = None,
        *,
        deadline: float | None = None,
    ) -> str:
        """Wait for the listening line, then for SERVING; the address.

        Args:
            timeout: seconds to wait (from now, unless `deadline` says when that ends).
            cancelled: set to give up at once.
            deadline: when the wait ends (`time.monotonic()`), if not `timeout` from now.

        Raises:
            StartFailed: it ended, did not serve within `timeout`, or `cancelled` was set.
        """
        if deadline is None:
            deadline = time.monotonic() + timeout

        def alive() -> str | None:
            if cancelled is not None and cancelled.is_set():
                return f"model {self.name!r}: the start was cancelled"
            return self.gone()

        while not self.listening.wait(0.05):
            if (why := alive()) is not None:
                raise StartFailed(why)
            if time.monotonic() > deadline:
                raise StartFailed(f"model {self.name!r} did not start within {timeout:g} s")
        assert self.address is not None
        try:
            return wait_serving(
                self.address,
                max(0.0, deadline - time.monotonic()),
                alive=alive,
                what=f"model {self.name!r}",
            )
        except ServiceError as exc:
            raise StartFailed(str(exc)) from None

    def wait(self) -> None:
        self.proc.wait()

    def ended(self) -> str:
        self.stderr_done.wait(5)  # its last words, before they are quoted
        return describe_status(self.proc.returncode)

    def last_lines(self) -> list[str]:
        self.stderr_done.wait(5)
        return list(self.tail)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)


class LocalModels:
    """Bundle models as local `modelwire serve` processes on free loopback ports.

    `bundles` names what to run: each name is one process (the runner names the
    replicas of a model `model#1`, `model#2`, ..., `modelwire.broker.replicas`).
    """

    def __init__(
        self,
        bundles: dict[str, Path],
        *,
        max_message_mb: int = 256,
        relay: Callable[[str, str], str | None] = lambda model, line: line.rstrip("\n"),
    ) -> None:
        self.bundles = bundles
        self.max_message_mb = max_message_mb
        self.relay = relay
        self.children: dict[str, LocalProcess] = {}  # the first process of each model
        self._all: list[LocalProcess] = []  # every process ever started, to stop them
        self._lock = threading.Lock()
        self._stopped = False

    def spawn(self, name: str) -> LocalProcess:
        """Start one more process of model `name` (it is not waited for).

        Raises:
            RuntimeError: the models are stopping.
        """
        with self._lock:
            if self._stopped:
                raise RuntimeError("the models are stopping")
            # a signal between the fork and the registration would lose the child to stop()
            with uninterrupted():
                child = LocalProcess(name, self.bundles[name], self.max_message_mb, self.relay)
                self._all.append(child)
        return child

    def start(self, timeout: float) -> dict[str, str]:
        """Start every model at once; wait until each reports SERVING. Returns addresses.

        Raises:
            ServiceError: a model ended or did not serve in time (the others are left to
                `stop()`).
        """
        for name in self.bundles:
            self.children[name] = self.spawn(name)
        deadline = time.monotonic() + timeout
        addresses = {}
        for name, child in self.children.items():
            try:
                addresses[name] = child.wait_serving(timeout, deadline=deadline)
            except StartFailed as exc:
                raise ServiceError(str(exc)) from None
            logger.info(
                "model %s serving at %s",
                name,
                addresses[name],
                extra={"model": name, "address": addresses[name]},
            )
        return addresses

    @property
    def instances(self) -> dict[str, LocalProcess]:
        return dict(self.children)

    def stop(self, grace: float) -> None:
        """SIGTERM every process still running, wait for them (SIGKILL stragglers)."""
        with self._lock:
            self._stopped = True
            children = list(self._all)
        for c in children:
            c.terminate()
        for c in children:
            try:
                c.proc.wait(grace + 5)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
        for c in children:
            c.stderr_done.wait(5)  # their last log lines are relayed before we return

    @property
    def pids(self) -> dict[str, int]:
        return {name: c.proc.pid for name, c in self.children.items()}

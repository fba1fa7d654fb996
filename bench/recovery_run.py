"""The iris chain under `modelwire run` for bench/recovery.py: the run, its callers.

`Run` starts `modelwire run` of the chain (its log kept in a file) and finds its model
processes; `Callers` are threads, each on a connection of its own, each sending requests
no other caller sends and checking every answer against its own request;
`not_serving_after` watches the solution's health for the first NOT_SERVING.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from modelwire.errors import ServiceError
from modelwire.hosting.remote import health_status
from modelwire.runtime.client import connect

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
LISTENING = "modelwire broker listening on "
MODELS = ("scaler", "classifier", "labels")
FLOWERS = {
    "setosa": (5.1, 3.5, 1.4, 0.2),
    "versicolor": (6.2, 2.9, 4.3, 1.3),
    "virginica": (7.7, 3.0, 6.1, 2.3),
}
NAMES = list(FLOWERS)
FIELDS = ("sepal_length", "sepal_width", "petal_length", "petal_width")
_AGAIN = re.compile(r"model (\w+) serving again at \S+ \(pid \d+\), ([0-9.]+) s after its restart")


def request(caller: int, seq: int) -> tuple[dict[str, list[float]], list[str]]:
    """Request `seq` of `caller`: 1 to 4 flowers in an order of its own, and their species."""
    wanted = [NAMES[(caller + seq + i * (seq % 3 + 1)) % 3] for i in range(1 + caller % 4)]
    columns = zip(*(FLOWERS[s] for s in wanted), strict=True)
    return {k: list(v) for k, v in zip(FIELDS, columns, strict=True)}, wanted


# ---------------------------------------------------------------- the run


class Run:
    """`modelwire run` of the iris chain, its log kept, its models found by bundle name."""

    def __init__(self, blueprint: Path, log: Path) -> None:
        self.log_path = log
        self.log = open(log, "w")  # noqa: SIM115 -- open for the run's life
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
        self.proc = subprocess.Popen(
            [PY, "-m", "modelwire", "run", str(blueprint), "--port", "0", "--log-format", "json"],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith(LISTENING):
            self.stop()
            raise RuntimeError(f"modelwire run did not start; see {log}")
        self.address = line[len(LISTENING) :].strip()

    def models(self) -> dict[str, int]:
        """The live model processes: model -> pid."""
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if int(fields[1]) != self.proc.pid or fields[0] == "Z":
                continue
            for arg in argv:
                name = Path(arg.decode(errors="replace")).name.removeprefix("iris-")
                if name in MODELS:
                    found[name] = int(entry)
        return found

    def starts(self) -> list[tuple[str, float]]:
        """(model, seconds from its spawn to SERVING) of every restart so far."""
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                message = json.loads(line).get("message", "")
            except ValueError:
                continue
            if m := _AGAIN.match(message):
                out.append((m.group(1), float(m.group(2))))
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


@dataclass
class Outcome:
    caller: int
    started: float
    ended: float
    ok: bool
    correct: bool


class Callers:
    """`n` threads calling `classify` in a loop, each on a connection of its own."""

    def __init__(self, address: str, n: int, pause: float = 0.0, deadline: float = 2.0):
        self.address, self.pause, self.deadline = address, pause, deadline
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]
        for t in self._threads:
            t.start()

    def _run(self, caller: int) -> None:
        options = [("grpc.use_local_subchannel_pool", 1), ("bench.caller", caller)]
        channel = grpc.insecure_channel(self.address, options=options)
        client = connect(self.address, channel=channel, timeout=self.deadline)
        seq = 0
        try:
            while not self._stop.is_set():
                kwargs, wanted = request(caller, seq)
                t0 = time.monotonic()
                try:
                    got = list(client.classify(**kwargs).species)
                except ServiceError:
                    outcome = Outcome(caller, t0, time.monotonic(), False, False)
                else:
                    outcome = Outcome(caller, t0, time.monotonic(), True, got == wanted)
                with self._lock:
                    self.outcomes.append(outcome)
                seq += 1
                if self.pause:
                    self._stop.wait(self.pause)
        finally:
            channel.close()

    def first_ok_after(self, t: float) -> float | None:
        """When the first call started once a call had failed after `t` (or after `t`, if
        none failed) succeeded: a kill takes a moment to take effect."""
        with self._lock:
            failed = [o.ended for o in self.outcomes if not o.ok and o.ended >= t]
            since = min(failed) if failed else t
            ends = [o.ended for o in self.outcomes if o.ok and o.started > since]
        return min(ends) if ends else None

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        return self.outcomes


def not_serving_after(address: str, t0: float, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        try:
            status = health_status(address, timeout=1.0)
        except ServiceError:
            status = "UNREACHABLE"
        if status != "SERVING":
            out.append(time.monotonic() - t0)
            return
        time.sleep(0.005)

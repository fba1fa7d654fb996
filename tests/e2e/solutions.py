"""`modelwire run BLUEPRINT` as a real subprocess, its child processes, its metrics."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.servers import clean_env, modelwire_popen

LISTENING = "modelwire broker listening on "
_METRICS = re.compile(r"metrics at (http://\S+/metrics)")
_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Proc:
    """A process identified by pid and start time, so a reused pid is not mistaken for it."""

    pid: int
    start: str  # field 22 of /proc/<pid>/stat, in clock ticks since boot

    @classmethod
    def of(cls, pid: int) -> Proc | None:
        stat = _stat(pid)
        return None if stat is None else cls(pid, stat[19])

    def alive(self) -> bool:
        """Still there (running, sleeping or an unreaped zombie)."""
        stat = _stat(self.pid)
        return stat is not None and stat[19] == self.start


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on; comm may hold spaces


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from every thread's /proc/<pid>/task/<tid>/children."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(set(found))


def descendants(pid: int) -> list[Proc]:
    out: list[Proc] = []
    for child in children(pid):
        proc = Proc.of(child)
        if proc is not None:
            out += [proc, *descendants(child)]
    return out


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text format -> {(name, {label: value}): value}."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not a Prometheus sample line: {line!r}"
        name, labels, value = match.groups()
        samples[(name, frozenset(_LABEL.findall(labels or "")))] = float(value)
    return samples


class Solution:
    """`python -m modelwire run BLUEPRINT --port 0 --metrics-port 0 [ARGS]` until stopped.

    Waits for the broker's listening line (stdout) and its metrics address (the
    JSON log on stderr); every failure message includes the broker's stderr.
    """

    def __init__(
        self, blueprint: Path, *args: str, timeout: float = 60.0, grace: float = 5.0
    ) -> None:
        self.blueprint = blueprint
        self.proc = modelwire_popen(
            "run",
            str(blueprint),
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--grace",
            str(grace),
            "--log-format",
            "json",
            *args,
            env=clean_env(),
        )
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._listening = threading.Event()
        self._metrics = threading.Event()
        self.address = ""
        self.metrics_url = ""
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + timeout
        for event, what in ((self._listening, "its listening line"), (self._metrics, "metrics")):
            while not event.wait(0.05):
                if self.proc.poll() is not None:
                    self._fail(f"exited with status {self.proc.returncode} before {what}")
                if time.monotonic() > deadline:
                    self.kill()
                    self._fail(f"printed no {what} within {timeout:g} s")

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.stdout_lines.append(line)
                if line.startswith(LISTENING):
                    self.address = line[len(LISTENING) :].strip()
                    self._listening.set()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            # keep draining whatever comes (a stalled pipe would block the broker's logging)
            for line in self.proc.stderr:
                self.stderr_lines.append(line)
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                message = record.get("message") if isinstance(record, dict) else None
                match = _METRICS.match(message) if isinstance(message, str) else None
                if match is not None:
                    self.metrics_url = match.group(1)
                    self._metrics.set()

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def _fail(self, what: str) -> None:
        raise AssertionError(f"modelwire run {self.blueprint.name} {what}:\n{self.stderr}")

    def descendants(self) -> list[Proc]:
        """The model processes (and anything they started), alive now."""
        return descendants(self.proc.pid)

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as reply:
            return parse_metrics(reply.read().decode())

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit status (the output pipes are read to the end)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self._fail(f"did not exit within {timeout:g} s of SIGTERM")
        for reader in self._readers:
            reader.join(5)
        return status

    def kill(self) -> None:
        """SIGKILL if still running (the models follow: they asked for PDEATHSIG)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)

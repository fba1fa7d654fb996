"""The benchmark's processes: started with their output in files, dying with the
orchestrator, and stopped with every process they started (`ProcessGroup`)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import descendants_of, proc_cpu_s, proc_start_time

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Proc:
    """A process this benchmark started, with where its output goes."""

    def __init__(self, popen: subprocess.Popen[bytes], label: str, out: Path, err: Path) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.start_ticks = proc_start_time(popen.pid)
        self.label = label
        self.out = out
        self.err = err
        self.descendants: dict[int, int | None] = {}

    def remember_descendants(self) -> None:
        """Record children (gunicorn workers...) so they can be stopped by PID later."""
        for pid in descendants_of(self.pid):
            self.descendants.setdefault(pid, proc_start_time(pid))

    def cpu_s(self) -> float:
        self.remember_descendants()
        return proc_cpu_s(self.pid) + sum(proc_cpu_s(p) for p in self.descendants)

    def descendants_cpu_s(self) -> dict[int, float]:
        """CPU seconds of each descendant (the workers of a multi-process server)."""
        self.remember_descendants()
        return {p: proc_cpu_s(p) for p in self.descendants}

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 15) -> str:
        lines: list[str] = []
        for p in (self.out, self.err):
            with contextlib.suppress(OSError):
                lines += p.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(lines[-n:])


class ProcessGroup:
    """Every process the benchmark starts; `stop_all()` ends them by PID.

    Children get their own session (so a Ctrl-C in the terminal reaches only the
    orchestrator, which then stops them in order) and PR_SET_PDEATHSIG=SIGTERM,
    so that even a SIGKILLed orchestrator leaves no server running.
    """

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[Proc] = []
        self._seq = 0

    def spawn(self, argv: Sequence[str], label: str, *, env: dict[str, str] | None = None) -> Proc:
        self._seq += 1
        stem = f"{self._seq:03d}-{label.replace('/', '_').replace(':', '_')}"
        out, err = self.logdir / f"{stem}.out", self.logdir / f"{stem}.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 -- the orchestrator has one thread
            )
        p = Proc(popen, label, out, err)
        self.procs.append(p)
        return p

    def wait_line(self, p: Proc, prefix: str, timeout: float) -> str:
        """Wait until `p` prints a stdout line starting with `prefix`; return the rest."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                for line in p.out.read_text(errors="replace").splitlines():
                    if line.startswith(prefix):
                        return line[len(prefix) :].strip()
            if not p.alive():
                raise RuntimeError(
                    f"{p.label} (pid {p.pid}) exited with {p.popen.returncode} before "
                    f"announcing its address:\n{p.tail()}"
                )
            time.sleep(0.02)
        raise RuntimeError(f"{p.label} (pid {p.pid}) did not announce its address in {timeout} s")

    def stop(self, p: Proc, timeout: float = 10.0) -> None:
        """SIGTERM the PID we started, then SIGKILL; then any descendant still running."""
        if p.alive():
            p.remember_descendants()
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
            try:
                p.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.popen.wait(timeout=10)
        for pid, ticks in p.descendants.items():
            # only the very process we saw (same PID and start time), never a reused PID
            if ticks is not None and proc_start_time(pid) == ticks:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if proc_start_time(pid) != ticks:
                        break
                    time.sleep(0.05)
                else:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for p in reversed(list(self.procs)):
            with contextlib.suppress(Exception):
                self.stop(p, timeout=5)


def run_client(
    group: ProcessGroup,
    argv: Sequence[str],
    label: str,
    timeout: float,
    *,
    env: dict[str, str] | None = None,
    on_start: Callable[[Proc], None] | None = None,
) -> tuple[dict[str, Any], Proc]:
    """Run a client process to completion; return its last JSON stdout line."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = group.spawn(argv, label, env=env)
    if on_start is not None:
        on_start(p)
    try:
        p.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        group.stop(p)
        raise RuntimeError(f"{label}: client did not finish within {timeout:.0f} s") from None
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    group.stop(p)
    if p.popen.returncode != 0:
        raise RuntimeError(f"{label}: client exited with {p.popen.returncode}:\n{p.tail()}")
    lines = [ln for ln in p.out.read_text().splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{label}: client printed no result:\n{p.tail()}")
    res: dict[str, Any] = json.loads(lines[-1])
    # CPU of the client process over its whole life (it is the only child waited for here)
    res["client_cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return res, p

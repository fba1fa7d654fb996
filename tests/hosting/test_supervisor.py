"""The supervisor's policy, on real processes: what ends is restarted at once after a good
run and with doubling pauses otherwise, a name whose starts keep failing is given up on
with its error, a kill for an address it no longer serves at is refused, and each end is
logged once with its status or signal and its last lines.

The instances are small Python processes (`python -c ...`) that print `ready` and sleep,
or fail at once: the seam `modelwire.hosting.supervisor.Instance` is, for real.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import ClassVar

import pytest

from modelwire.hosting.supervisor import RestartPolicy, StartFailed, Supervisor, describe_status

pytestmark = pytest.mark.timeout(60)

SERVES = (
    "import sys, time; print('loaded', file=sys.stderr, flush=True); print('ready', flush=True);"
    " time.sleep(600)"
)
FAILS = "import sys; print('no GPU here', file=sys.stderr, flush=True); sys.exit(3)"


class Proc:
    """A process that is 'SERVING' once it printed `ready`; its address is made up."""

    count: ClassVar[int] = 0
    made: ClassVar[list[Proc]] = []

    def __init__(self, code: str) -> None:
        Proc.count += 1
        Proc.made.append(self)
        self.n = Proc.count
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.what = f"pid {self.proc.pid}"

    def wait_serving(self, timeout: float, cancelled: threading.Event) -> str:
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.proc.wait()
            raise StartFailed(f"it {self.ended()} before serving")
        return f"127.0.0.1:{10000 + self.n}"

    def wait(self) -> None:
        self.proc.wait()

    def ended(self) -> str:
        return describe_status(self.proc.wait())

    def last_lines(self) -> list[str]:
        assert self.proc.stderr is not None
        return [line.rstrip("\n") for line in self.proc.stderr.readlines()[-3:]]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self) -> None:
        self.kill()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(autouse=True)
def _close_processes():
    yield
    while Proc.made:
        Proc.made.pop().close()


def test_pauses_double_from_the_second_restart_in_a_row():
    policy = RestartPolicy(backoff=0.5, max_backoff=3.0)
    assert [policy.pause(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_describe_status():
    assert describe_status(0) == "exited with status 0"
    assert describe_status(3) == "exited with status 3"
    assert describe_status(-9) == "was killed by SIGKILL"


def _supervisor(codes: list[str], policy: RestartPolicy) -> tuple[Supervisor, list[tuple]]:
    changes: list[tuple] = []
    started = iter(codes)
    sup = Supervisor(
        "model",
        lambda name: Proc(next(started)),
        policy,
        10.0,
        lambda name, address, why: changes.append((name, address, why)),
    )
    return sup, changes


def _wait(check, what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_an_end_is_logged_once_and_restarted_at_once_after_a_good_run(caplog):
    caplog.set_level(logging.INFO, logger="modelwire")
    sup, changes = _supervisor([SERVES], RestartPolicy(short_run=0.0))
    first = Proc(SERVES)
    address = first.wait_serving(10, threading.Event())
    sup.adopt("m", first, address)
    t0 = time.monotonic()
    first.kill()
    _wait(lambda: len(changes) == 2, "the restart")
    assert time.monotonic() - t0 < 5
    assert changes[0] == ("m", None, "is restarting (it was killed by SIGKILL)")
    assert changes[1][0] == "m" and changes[1][1] not in (None, address)
    ended = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert ended == [
        f"model m ({first.what}) was killed by SIGKILL after serving "
        f"{ended[0].split('after serving ')[1].split(' s;')[0]} s; restarting it at once; its "
        "last log lines:\n    loaded"
    ]
    assert not sup.kill("m", address, "hung")  # no longer where it serves
    for instance in sup.stop():
        instance.kill()
    sup.join(10)


def test_starts_that_keep_failing_are_given_up_with_the_error(caplog):
    caplog.set_level(logging.INFO, logger="modelwire")
    sup, changes = _supervisor([FAILS, FAILS, FAILS], RestartPolicy(backoff=0.05, max_restarts=3))
    first = Proc(SERVES)
    sup.adopt("m", first, first.wait_serving(10, threading.Event()))
    first.kill()
    _wait(sup.failed, "giving up")
    assert sup.failed() == {
        "m": "3 restarts in a row failed; the last: it exited with status 3 before serving"
    }
    assert changes[-1] == (
        "m",
        None,
        "has failed (3 restarts in a row failed; the last: it exited with status 3 before serving)",
    )
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[1:] == [
        "model m failed to restart (attempt 1 of 3): it exited with status 3 before serving; "
        "trying again in 0.1 s",
        "model m failed to restart (attempt 2 of 3): it exited with status 3 before serving; "
        "trying again in 0.2 s",
        "model m failed to restart (attempt 3 of 3): it exited with status 3 before serving",
        "model m has failed (3 restarts in a row failed; the last: it exited with status 3 "
        "before serving): not starting it again",
    ]
    sup.stop()


def test_a_kill_ends_the_instance_and_its_reason_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="modelwire")
    sup, changes = _supervisor([SERVES], RestartPolicy())
    first = Proc(SERVES)
    address = first.wait_serving(10, threading.Event())
    sup.adopt("m", first, address)
    assert sup.kill("m", address, "stopped answering its health checks for 3 s")
    _wait(lambda: len(changes) == 2, "the restart")
    assert changes[0] == (
        "m",
        None,
        "is restarting (it stopped answering its health checks for 3 s)",
    )
    [ended] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert ended.startswith(
        f"model m ({first.what}) stopped answering its health checks for 3 s: killed it after "
    )
    for instance in sup.stop():
        instance.kill()
    sup.join(10)

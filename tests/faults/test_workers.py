"""Faults injected into `modelwire serve --workers 2` under concurrent load: SIGKILL of each
worker in turn, SIGSTOP, a worker that fails on every start, a worker that takes long to
load. The other worker keeps serving the shared port throughout.

Each scenario checks the service's health (a new connection reaches a live worker: it stays
SERVING), the recovery, that every answer received is the right one for its own request,
that calls failed only while a worker was down (those that were on its connection), and
the supervisor's log lines.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.broker.helpers import children_of
from tests.faults.conftest import cmdline, step_call
from tests.faults.load import HealthWatch, Load, Outcome
from tests.runtime.serving import json_logs, wait_for
from tests.servers import ServeProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CALLS = {"step": step_call}


def _serve(root: Path, control: Path, *args: str) -> ServeProcess:
    return ServeProcess(
        str(root / "_bundles" / "w"),
        "--workers",
        "2",
        *args,
        env={"FRAGILE_CONTROL": str(control)},
        timeout=90,
    )


def _workers(served: ServeProcess) -> list[int]:
    return [p for p in children_of(served.proc.pid) if "modelwire.runtime.workers" in cmdline(p)]


def _replaced(served: ServeProcess, old: int) -> int:
    found: list[int] = []

    def new_one() -> bool:
        now = _workers(served)
        if len(now) == 2 and old not in now:
            found.extend(now)
        return bool(found)

    wait_for(new_one, 60, f"a worker in place of {old}")
    return max(found)


def _errors(served: ServeProcess) -> list[str]:
    return [
        r["message"]
        for r in json_logs(served.stderr)
        if r["logger"] == "modelwire.hosting.supervisor" and r["level"] == "error"
    ]


def _check(outcomes: Sequence[Outcome], windows: Sequence[tuple[float, float]]) -> list[Outcome]:
    assert len(outcomes) >= 100, f"only {len(outcomes)} calls were made"
    wrong = [o for o in outcomes if o.status == "OK" and not o.correct]
    assert wrong == [], f"{len(wrong)} wrong answers, e.g. {wrong[:3]}"
    failed = [o for o in outcomes if o.status != "OK"]
    for o in failed:
        assert any(o.ended >= t0 and o.started <= t1 + 0.5 for t0, t1 in windows), (
            f"a call failed outside the windows {windows}: {o}"
        )
        assert o.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED"), o
        assert o.ended - o.started <= 3.0, o  # its 2 s deadline at most
    return failed


def _always_serving(changes: list[tuple[float, str]], kills: Sequence[float]) -> None:
    """A new connection always reaches a worker that answers SERVING, but for one made in
    the instant a worker is killed: the kernel resets the connections still queued on the
    dead worker's share of the port (SO_REUSEPORT; Linux can migrate them only with the
    net.ipv4.tcp_migrate_req sysctl)."""
    assert changes[0][1] == "SERVING" and changes[-1][1] == "SERVING", changes
    for t, status in changes:
        if status != "SERVING":
            assert any(k <= t <= k + 1.0 for k in kills), changes


def _run(served: ServeProcess) -> tuple[Load, HealthWatch]:
    load = Load(served.address, CALLS).start()
    watch = HealthWatch(served.address, [""]).start()
    time.sleep(1.0)
    return load, watch


def test_sigkill_of_each_worker_in_turn(fragile_root, control):
    served = _serve(fragile_root, control)
    load = watch = None
    try:
        load, watch = _run(served)
        windows, killed = [], []
        for victim in sorted(_workers(served)):
            t0 = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            _replaced(served, victim)
            done = len(killed)
            wait_for(lambda n=done: _errors(served)[n:] != [], 10, "the end to be logged")
            wait_for(
                lambda n=done: served.stderr.count("serving again at") > n,
                60,
                "the new worker to serve",
            )
            windows.append((t0, time.monotonic()))
            killed.append(victim)
            time.sleep(1.0)
        outcomes = load.stop()
        changes = watch.stop()
        assert served.terminate() == 0, served.stderr
    finally:
        for thing in (load, watch):
            if thing is not None:
                thing.stop()
        served.kill()
    failed = _check(outcomes, windows)
    print(f"{len(outcomes)} calls, {len(failed)} failed (in flight on the killed worker)")
    _always_serving(changes[""], [t0 for t0, _ in windows])  # another worker answered
    errors = _errors(served)
    assert len(errors) == 2, errors
    for pid, line in zip(killed, errors, strict=True):
        assert re.match(rf"worker [01] \(pid {pid}\) was killed by SIGKILL after serving ", line)
    assert served.stderr.count("serving again at") == 2


def test_a_stopped_worker_is_killed_and_replaced(fragile_root, control):
    """SIGSTOP: its part of the shared port keeps taking connections that hang; its own
    health port tells the supervisor, which kills it after 3 s and starts another."""
    served = _serve(fragile_root, control)
    load = watch = None
    try:
        load, watch = _run(served)
        victim = min(_workers(served))
        t0 = time.monotonic()
        os.kill(victim, signal.SIGSTOP)
        new = _replaced(served, victim)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGCONT)
        wait_for(lambda: "serving again at" in served.stderr, 60, "the new worker to serve")
        t1 = time.monotonic()
        time.sleep(2.0)
        outcomes = load.stop()
        watch.stop()
        assert served.terminate() == 0, served.stderr
    finally:
        for thing in (load, watch):
            if thing is not None:
                thing.stop()
        served.kill()
    failed = _check(outcomes, [(t0, t1)])
    print(f"{len(outcomes)} calls, {len(failed)} failed while worker {victim} was stopped")
    [line] = _errors(served)
    assert re.match(
        rf"worker [01] \(pid {victim}\) stopped answering its health checks for 3 s: "
        "killed it after serving ",
        line,
    ), line
    assert new != victim


def test_a_worker_that_fails_on_every_start_is_given_up_and_the_other_serves_on(
    fragile_root, control
):
    """And once every worker is given up on, `serve` stops with status 1."""
    served = _serve(fragile_root, control, "--max-restarts", "2", "--restart-backoff", "0.1")
    load = watch = None
    try:
        load, watch = _run(served)
        first, second = sorted(_workers(served))
        (control / "w.crash").touch()
        t0 = time.monotonic()
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: "has failed" in served.stderr, 60, "the worker to be given up on")
        t1 = time.monotonic()
        time.sleep(1.5)
        outcomes = load.stop()
        changes = watch.stop()
        assert _workers(served) == [second]
        os.kill(second, signal.SIGKILL)
        assert served.proc.wait(60) == 1, served.stderr
    finally:
        for thing in (load, watch):
            if thing is not None:
                thing.stop()
        served.kill()
    _check(outcomes, [(t0, t1)])
    assert all(o.status == "OK" for o in outcomes if o.started > t1 + 0.5)
    _always_serving(changes[""], [t0])
    errors = _errors(served)
    assert errors[0].startswith(f"worker 0 (pid {first}) was killed by SIGKILL") or errors[
        0
    ].startswith(f"worker 1 (pid {first}) was killed by SIGKILL"), errors
    assert re.match(r"worker [01] failed to restart \(attempt 1 of 2\): ", errors[1]), errors
    assert "w was told to fail at start" in errors[1]  # the error it reported
    assert re.match(
        r"worker [01] has failed \(2 restarts in a row failed; the last: .*w was told to fail "
        r"at start.*\): not starting it again",
        errors[3],
    ), errors
    messages = [r["message"] for r in json_logs(served.stderr)]
    assert "every worker has failed: stopping" in messages


def test_a_worker_that_takes_long_to_load_joins_the_port_once_it_serves(fragile_root, control):
    served = _serve(fragile_root, control)
    load = watch = None
    try:
        load, watch = _run(served)
        (control / "w.slow").write_text("3")
        victim = min(_workers(served))
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "serving again at" in served.stderr, 60, "the new worker to serve")
        time.sleep(1.0)
        outcomes = load.stop()
        changes = watch.stop()
        assert served.terminate() == 0, served.stderr
    finally:
        for thing in (load, watch):
            if thing is not None:
                thing.stop()
        served.kill()
    # only the calls in flight on the killed worker failed: none while the new one loaded
    failed = _check(outcomes, [(t0, t0 + 1.0)])
    print(f"{len(outcomes)} calls, {len(failed)} failed")
    _always_serving(changes[""], [t0])
    [again] = [r for r in json_logs(served.stderr) if "serving again at" in r["message"]]
    took = float(re.search(r", ([0-9.]+) s after its restart", again["message"]).group(1))
    assert took >= 3.0
    assert len(_errors(served)) == 1

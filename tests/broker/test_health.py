"""The solution's health tells the truth about its models: a method is NOT_SERVING while a
model it calls is down or not answering (the others stay SERVING), and SERVING again when
it is back; its calls fail at once with UNAVAILABLE naming the step and the model instead
of hanging; and its failures are logged bounded, once per distinct failure per interval.

The models here are `address:` models nobody supervises: real servers this test stops,
restarts, or freezes with SIGSTOP.
"""

from __future__ import annotations

import logging
import os
import signal
import time

import grpc
import pytest

from modelwire.hosting.remote import health_status
from tests.broker.helpers import HandlerServer, InProcessSolution, RawClient, write_blueprint
from tests.fixtures.models import sleeper
from tests.runtime.serving import wait_for

pytestmark = pytest.mark.timeout(90)

TWO = """
name: two
models:
  a: {address: "@a"}
  b: {address: "@b"}
methods:
  both:
    steps:
      first: {call: a.nap, with: $input}
      second: {call: b.stamp, with: first}
    output: second
  only_b:
    steps:
      n: {call: b.nap, with: $input}
    output: n
"""
SERVICE = "modelwire.solutions.two.v1.TwoService"
NAMES = ("", SERVICE, f"{SERVICE}/Both", f"{SERVICE}/OnlyB")


def nap(request, context):
    return {"seconds": request.seconds, "started": 1.0, "ended": 2.0}


def stamp(request, context):
    return {"seconds": 0.0, "started": 3.0, "ended": 4.0}


def healths(address: str) -> list[str]:
    return [health_status(address, name) for name in NAMES]


def test_a_method_is_not_serving_while_a_model_it_calls_is_down(solve, servers):
    a = HandlerServer(sleeper.model(), "a", {"nap": nap})
    b = servers(HandlerServer(sleeper.model(), "b", {"nap": nap, "stamp": stamp}))
    solution, call = solve(TWO, a=a.address, b=b.address)
    assert healths(solution.address) == ["SERVING"] * 4
    assert call("both", seconds=0.0, timeout=10).started == 3.0

    a.stop()
    wait_for(lambda: health_status(solution.address) == "NOT_SERVING", 10, "NOT_SERVING")
    # the method that needs `a` is out, the other one serves on
    assert healths(solution.address) == ["NOT_SERVING", "NOT_SERVING", "NOT_SERVING", "SERVING"]
    assert call("only_b", seconds=0.0, timeout=10).ended == 2.0
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        call("both", seconds=0.0, timeout=30)
    assert time.monotonic() - t0 < 5  # at once, not at the deadline
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert info.value.details().startswith(
        f"both: step 'first' (a.nap at {a.address}) failed: UNAVAILABLE: "
    )

    servers(HandlerServer(sleeper.model(), "a", {"nap": nap}, port=a.port))
    wait_for(lambda: health_status(solution.address) == "SERVING", 10, "SERVING again")
    assert healths(solution.address) == ["SERVING"] * 4
    assert call("both", seconds=0.0, timeout=10).started == 3.0


def test_a_model_that_stops_answering_is_taken_out_until_it_answers_again(
    tmp_path, bundle, serve_process, servers, solve
):
    """SIGSTOP: the process lives and its port accepts connections, but nothing answers.
    Calls fail at once once the health checks have gone unanswered (~1 s), rather than
    hang to their deadline; SIGCONT brings the method back."""
    frozen = serve_process(bundle("sleeper"))
    b = servers(HandlerServer(sleeper.model(), "b", {"nap": nap, "stamp": stamp}))
    solution, call = solve(TWO, a=frozen.address, b=b.address)
    assert call("both", seconds=0.0, timeout=10).started == 3.0
    pid = frozen.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        wait_for(lambda: health_status(solution.address) == "NOT_SERVING", 10, "NOT_SERVING")
        assert time.monotonic() - t0 < 4
        assert healths(solution.address)[3] == "SERVING"
        t1 = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            call("both", seconds=0.0, timeout=30)
        assert time.monotonic() - t1 < 1
        assert (info.value.code(), info.value.details()) == (
            grpc.StatusCode.UNAVAILABLE,
            "both: step 'first' (a.nap) failed: UNAVAILABLE: model 'a' at "
            f"{frozen.address} is not answering its health checks",
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: health_status(solution.address) == "SERVING", 10, "SERVING again")
    assert call("both", seconds=0.5, timeout=10).started == 3.0


def test_a_retrying_step_waits_for_its_model_to_come_back(solve, servers):
    """With `retry:`, a call made while the model is down is re-sent once it is back."""
    a = HandlerServer(sleeper.model(), "a", {"nap": nap})
    b = servers(HandlerServer(sleeper.model(), "b", {"nap": nap, "stamp": stamp}))
    solution, call = solve(
        TWO.replace("with: $input}", "with: $input, retry: 6}", 1), a=a.address, b=b.address
    )
    a.stop()
    wait_for(lambda: health_status(solution.address) == "NOT_SERVING", 10, "NOT_SERVING")
    servers(HandlerServer(sleeper.model(), "a", {"nap": nap}, port=a.port))
    # 6 retries wait 50 ms .. 1.6 s, 3.15 s in all: time for the probe to see it back
    assert call("both", seconds=0.0, timeout=30).started == 3.0


def test_failed_calls_are_logged_once_per_distinct_failure_per_interval(tmp_path, servers, caplog):
    """200 calls fail alike: one line at the first, one with the count when the interval
    ends; a second kind of failure has lines of its own."""

    def broken(request, context):
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"too big: {request.seconds}")

    a = servers(HandlerServer(sleeper.model(), "a", {"nap": broken}))
    b = servers(HandlerServer(sleeper.model(), "b", {"nap": broken, "stamp": stamp}))
    caplog.set_level(logging.INFO, logger="modelwire")
    path = write_blueprint(tmp_path / "two.yaml", TWO, a=a.address, b=b.address)
    solution = servers(InProcessSolution(path, failure_log_seconds=1.0))
    call = servers(RawClient(solution))
    for i in range(200):
        with pytest.raises(grpc.RpcError):
            call("both", seconds=float(i), timeout=10)
    with pytest.raises(grpc.RpcError):
        call("only_b", seconds=-1.0, timeout=10)
    wait_for(lambda: any("more times" in r.getMessage() for r in caplog.records), 10, "the count")
    lines = [r.getMessage() for r in caplog.records if r.name == "modelwire.broker.failures"]
    assert lines == [
        f"both failed: both: step 'first' (a.nap at {a.address}) failed: RESOURCE_EXHAUSTED: "
        "too big: 0.0",
        f"only_b failed: only_b: step 'n' (b.nap at {b.address}) failed: RESOURCE_EXHAUSTED: "
        "too big: -1.0",
        "both failed 199 more times like this in the last 1 s (RESOURCE_EXHAUSTED at step "
        f"'first'); the latest: both: step 'first' (a.nap at {a.address}) failed: "
        "RESOURCE_EXHAUSTED: too big: 199.0",
    ]

"""Routing a solution's calls when time runs out or models fail: deadlines, per-step
timeouts, retries on UNAVAILABLE, and failures that cancel siblings and name the step.

Where a test must see what a model cannot (its deadline, its call being cancelled), the
model is a `HandlerServer` with a fixture model's schema.
"""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest

from modelwire.broker.check import check_file
from modelwire.broker.router import Router
from modelwire.codegen.descriptors import file_descriptor, message_classes
from modelwire.errors import StepFailed
from modelwire.hosting.status import Status, status_of
from tests.broker.helpers import HandlerServer, write_blueprint
from tests.fixtures.models import sleeper

# ---------------------------------------------------------------- deadlines and timeouts

# how long a test waits for what must happen (a model's call reached, or cancelled): a bound
# on a test that fails, never a measurement; a model "naps" far longer, until cancelled
WAIT = 30.0
FOREVER = 3600.0


class Watcher:
    """Handlers of `sleeper.nap` that see their deadline and their cancellation."""

    def __init__(self) -> None:
        self.remaining: list[float | None] = []
        self.cancelled = threading.Event()
        self.started = threading.Event()

    def nap(self, request, context):
        self.remaining.append(context.time_remaining())
        context.add_callback(lambda: None if context.is_active() else self.cancelled.set())
        self.started.set()
        t0 = time.monotonic()
        while context.is_active() and time.monotonic() - t0 < request.seconds:
            time.sleep(0.005)
        return {"seconds": request.seconds, "started": t0, "ended": time.monotonic()}


DEADLINES = """
name: deadlines
models:
  watcher: {address: "@watcher"}
methods:
  slow:
    steps:
      n: {call: watcher.nap, with: $input}
    output: n
  bounded:
    steps:
      n: {call: watcher.nap, with: $input, timeout: 2s}
    output: n
"""


def test_the_client_deadline_reaches_the_model(solve, servers):
    """The model sees the caller's deadline (what remained of it), and its call is cancelled
    when it passes."""
    watcher = Watcher()
    model = servers(HandlerServer(sleeper.model(), "watcher", {"nap": watcher.nap}))
    _, call = solve(DEADLINES, watcher=model.address)
    with pytest.raises(grpc.RpcError) as info:
        call("slow", seconds=FOREVER, timeout=2.0)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [remaining] = watcher.remaining
    assert remaining is not None and 0 < remaining <= 2.05  # grpc-timeout rounds up
    assert watcher.cancelled.wait(WAIT), "the model's call was not cancelled"


def test_a_step_timeout_bounds_its_call(solve, servers):
    watcher = Watcher()
    model = servers(HandlerServer(sleeper.model(), "watcher", {"nap": watcher.nap}))
    _, call = solve(DEADLINES, watcher=model.address)
    with pytest.raises(grpc.RpcError) as info:
        call("bounded", seconds=60.0)  # the client sets no deadline; the nap would end
    assert (info.value.code(), info.value.details()) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        f"bounded: step 'n' (watcher.nap at {model.address}) failed: DEADLINE_EXCEEDED: "
        "Deadline Exceeded (the step's timeout is 2 s)",
    )
    [remaining] = watcher.remaining
    assert remaining is not None and 0 < remaining <= 2.01  # grpc-timeout rounds up
    assert watcher.cancelled.wait(WAIT), "the model's call was not cancelled"


def test_the_shorter_of_deadline_and_step_timeout_wins(solve, servers):
    """The caller's 1 s, not the step's 2 s: the model's deadline is the caller's."""
    watcher = Watcher()
    model = servers(HandlerServer(sleeper.model(), "watcher", {"nap": watcher.nap}))
    _, call = solve(DEADLINES, watcher=model.address)
    with pytest.raises(grpc.RpcError) as info:
        call("bounded", seconds=FOREVER, timeout=1.0)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    [remaining] = watcher.remaining
    assert remaining is not None and remaining <= 1.05


# ---------------------------------------------------------------- retry on UNAVAILABLE

RETRY = """
name: retrying
models:
  flaky: {address: "@flaky"}
methods:
  twice:
    steps:
      n: {call: flaky.nap, with: $input, retry: 2}
    output: n
  once:
    steps:
      n: {call: flaky.nap, with: $input, retry: 1}
    output: n
"""


def flaky(failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE):
    """A nap handler that fails `failures` times with `code`, then answers."""
    seen: list[int] = []

    def nap(request, context):
        seen.append(1)
        if len(seen) <= failures:
            context.abort(code, f"not yet ({len(seen)})")
        return {"seconds": request.seconds, "started": 1.0, "ended": 2.0}

    return nap, seen


@pytest.mark.parametrize(
    ("method", "failures", "code", "calls", "details"),
    [
        pytest.param("twice", 2, grpc.StatusCode.UNAVAILABLE, 3, None, id="recovers"),
        pytest.param(
            "once",
            2,
            grpc.StatusCode.UNAVAILABLE,
            2,
            "once: step 'n' (flaky.nap at {address}) failed after 2 attempts: UNAVAILABLE: "
            "not yet (2)",
            id="gives-up",
        ),
        pytest.param(
            "twice",
            1,
            grpc.StatusCode.INTERNAL,
            1,
            "twice: step 'n' (flaky.nap at {address}) failed: INTERNAL: not yet (1)",
            id="only-unavailable",
        ),
    ],
)
def test_retry_resends_on_unavailable(solve, servers, method, failures, code, calls, details):
    handler, seen = flaky(failures, code)
    model = servers(HandlerServer(sleeper.model(), "flaky", {"nap": handler}))
    _, call = solve(RETRY, flaky=model.address)
    if details is None:
        assert call(method, seconds=1.5, timeout=10).ended == 2.0
    else:
        with pytest.raises(grpc.RpcError) as info:
            call(method, seconds=1.5, timeout=10)
        assert (info.value.code(), info.value.details()) == (
            code,
            details.format(address=model.address),
        )
    assert len(seen) == calls


def test_retry_reaches_a_model_restarted_after_the_first_attempt(solve, servers):
    def nap(request, context):
        return {"seconds": request.seconds, "started": 1.0, "ended": 2.0}

    model = HandlerServer(sleeper.model(), "flaky", {"nap": nap})
    # retries 50, 100, 200 and 400 ms apart: a restarted model is reached within 0.75 s,
    # which needs a reconnect backoff shorter than grpc's default second
    solution, call = solve(RETRY.replace("retry: 2", "retry: 4"), flaky=model.address)
    assert call("twice", seconds=0.0, timeout=10).ended == 2.0
    model.stop()  # the model goes away; the broker's channel sees it drop
    result: list[object] = []

    def call_in_background() -> None:
        try:
            result.append(call("twice", seconds=0.0, timeout=20).ended)
        except grpc.RpcError as exc:
            result.append(f"{exc.code().name}: {exc.details()}")

    caller = threading.Thread(target=call_in_background, daemon=True)
    caller.start()

    def unavailable() -> int:
        return sum(n for m, s, c, n in solution.metrics.snapshot()["calls"] if c == "UNAVAILABLE")

    deadline = time.monotonic() + 10
    while unavailable() == 0:
        assert time.monotonic() < deadline, "the first attempt never failed"
        time.sleep(0.005)
    servers(HandlerServer(sleeper.model(), "flaky", {"nap": nap}, port=model.port))
    caller.join(15)
    assert result == [2.0]
    assert unavailable() >= 1


# ---------------------------------------------------------------- failures

FAILING = """
name: failing
models:
  watcher: {address: "@watcher"}
  gate: {address: "@gate"}
  sleeper: {address: "@sleeper"}
methods:
  boom:
    steps:
      slow: {call: watcher.nap, with: {seconds: $input.seconds}}
      pause: {call: gate.nap, with: {seconds: $input.pause}}
      broken: {call: sleeper.fail, with: pause}
      all: {call: sleeper.join, with: {a: slow, b: broken, c: pause}}
    output: all
"""


def test_a_failing_step_cancels_its_siblings(solve, servers, model_server):
    """'pause' answers once its sibling's call has reached the model, then 'broken' fails:
    the call fails with its status while the sibling naps on, and the nap is cancelled."""
    watcher = Watcher()
    model = servers(HandlerServer(sleeper.model(), "watcher", {"nap": watcher.nap}))

    def pause(request, context):
        if not watcher.started.wait(WAIT):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "'slow' never reached its model")
        return {"seconds": request.seconds, "started": 0.0, "ended": 0.0}

    gate = servers(HandlerServer(sleeper.model(), "gate", {"nap": pause}))
    real = model_server("sleeper")
    solution, call = solve(FAILING, watcher=model.address, gate=gate.address, sleeper=real.address)
    with pytest.raises(grpc.RpcError) as info:
        # had the call waited for its sibling, it would end at the deadline instead
        call("boom", seconds=FOREVER, pause=0.0, timeout=2 * WAIT)
    assert (info.value.code(), info.value.details()) == (
        grpc.StatusCode.INTERNAL,
        f"boom: step 'broken' (sleeper.fail at {real.address}) failed: INTERNAL: "
        "fail: the model raised RuntimeError; the traceback is in the server's log",
    )
    assert watcher.cancelled.wait(WAIT), "the sibling's call was not cancelled"
    codes = {(s, c) for m, s, c, _ in solution.metrics.snapshot()["calls"]}
    assert ("broken", "INTERNAL") in codes and ("slow", "CANCELLED") in codes
    assert "all" not in {s for s, _ in codes}


ONE_STEP = """
name: single
models:
  m: {address: "@m"}
methods:
  nap:
    steps:
      n: {call: m.nap, with: $input}
    output: n
  stamp:
    steps:
      n: {call: m.nap, with: $input}
      s: {call: m.stamp, with: {seconds: n.seconds, started: n.started, ended: n.ended}}
    output: s
"""


def test_an_empty_status_message_is_never_passed_on(solve, servers):
    def nap(request, context):
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "")

    model = servers(HandlerServer(sleeper.model(), "m", {"nap": nap}))
    _, call = solve(ONE_STEP, m=model.address)
    with pytest.raises(grpc.RpcError) as info:
        call("nap", seconds=1.0, timeout=10)
    assert (info.value.code(), info.value.details()) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"nap: step 'n' (m.nap at {model.address}) failed: RESOURCE_EXHAUSTED: (no details)",
    )


def test_a_reply_that_cannot_be_read_fails_the_step_that_reads_it(solve, servers):
    """The fields of 'n' are forwarded: the broker reads the reply's bytes only to find them,
    and finds them cut short."""

    def nap(request, context):
        return b"\x0a\xff"  # field 1, length-delimited, 127+ bytes announced, none sent

    def stamp(request, context):
        return {"seconds": 0.0, "started": 0.0, "ended": 0.0}

    model = servers(HandlerServer(sleeper.model(), "m", {"nap": nap, "stamp": stamp}))
    _, call = solve(ONE_STEP, m=model.address)
    with pytest.raises(grpc.RpcError) as info:
        call("stamp", seconds=1.0, timeout=10)
    assert info.value.code() is grpc.StatusCode.INTERNAL
    assert info.value.details() == (
        f"stamp: step 's' (m.stamp at {model.address}): its request could not be built from "
        "the replies it reads (truncated varint)"
    )


def test_the_router_raises_step_failed_with_the_step_and_its_status(tmp_path, servers):
    """`Router.execute` raises `modelwire.errors.StepFailed`, whose data say which step failed
    and how; the solution answers with `status_of` of it, the model's status passed on."""

    def nap(request, context):
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too big")

    model = servers(HandlerServer(sleeper.model(), "m", {"nap": nap}))
    plan, _, addresses = check_file(write_blueprint(tmp_path / "b.yaml", ONE_STEP, m=model.address))
    request = message_classes(file_descriptor(plan.schema)).get("NapRequest")(seconds=1.0)

    async def call() -> bytes:
        router = Router(plan, addresses)
        await router.start()
        try:
            return await router.execute("nap", request.SerializeToString(), None)
        finally:
            await router.close()

    with pytest.raises(StepFailed) as info:
        asyncio.run(call())
    message = f"nap: step 'n' (m.nap at {model.address}) failed: RESOURCE_EXHAUSTED: too big"
    assert (info.value.method, info.value.step, info.value.status, str(info.value)) == (
        "nap",
        "n",
        "RESOURCE_EXHAUSTED",
        message,
    )
    assert status_of(info.value) == Status(grpc.StatusCode.RESOURCE_EXHAUSTED, message)


SAME_NAMES = """
name: same-names
models:
  m: {address: "@m"}
  other: {address: "@other"}
methods:
  first:
    steps:
      n: {call: m.nap, with: $input}
    output: n
  second:
    steps:
      n: {call: other.nap, with: $input}
    output: n
"""


def test_a_failed_step_names_its_own_model_when_another_method_has_a_step_of_its_name(
    solve, servers
):
    def nap(request, context):
        context.abort(grpc.StatusCode.INTERNAL, "boom")

    m = servers(HandlerServer(sleeper.model(), "m", {"nap": nap}))
    other = servers(HandlerServer(sleeper.model(), "other", {"nap": nap}))
    _, call = solve(SAME_NAMES, m=m.address, other=other.address)
    for method, model, address in (("first", "m", m.address), ("second", "other", other.address)):
        with pytest.raises(grpc.RpcError) as info:
            call(method, seconds=1.0, timeout=10)
        assert info.value.details() == (
            f"{method}: step 'n' ({model}.nap at {address}) failed: INTERNAL: boom"
        )

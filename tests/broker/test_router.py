"""Routing a solution's calls between real model services: scheduling, and forwarding bytes
vs transcoding them.

The models run in this process (`modelwire.runtime.server.start`) or, where a test must see
what a model cannot (when its call arrived, what others did meanwhile), as `HandlerServer`s
with the same schema; the solution is served by `start_solution` on its own event loop.
Deadlines, retries and failures are in test_router_failures.py.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from typing import Any

import grpc
import numpy as np
import pytest

from tests.broker.helpers import HandlerServer
from tests.fixtures.models import sleeper
from tests.runtime.prometheus import parse

# ---------------------------------------------------------------- scheduling

# how long a model waits for what the test expects to happen meanwhile: a bound on a test
# that fails (it would hang otherwise), never a measurement
WAIT = 30.0

FAN = """
name: fan
models:
  gate: {address: "@gate"}
  sleeper: {address: "@sleeper"}
methods:
  fan:
    steps:
      a: {call: gate.nap, with: $input}
      b: {call: gate.nap, with: $input}
      c: {call: gate.nap, with: $input}
      all: {call: sleeper.join, with: {a: a, b: b, c: c}}
    output: all
"""


def test_independent_steps_run_concurrently(solve, servers, model_server):
    """Each of the three naps answers only once all three have begun: run one after another,
    the first would wait for the others in vain."""
    begun = threading.Barrier(3, timeout=WAIT)

    def nap(request, context):
        started = time.time()
        try:
            begun.wait()
        except threading.BrokenBarrierError:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the other naps never began")
        return {"seconds": request.seconds, "started": started, "ended": time.time()}

    gate = servers(HandlerServer(sleeper.model(), "gate", {"nap": nap}))
    _, call = solve(FAN, gate=gate.address, sleeper=model_server("sleeper").address)
    reply = call("fan", seconds=0.0, timeout=2 * WAIT)
    assert reply.overlapped, reply
    assert gate.calls == ["nap", "nap", "nap"]


EAGER = """
name: eager
models:
  quick: {address: "@quick"}
  held: {address: "@held"}
  sleeper: {address: "@sleeper"}
methods:
  eager:
    steps:
      fast: {call: quick.nap, with: {seconds: $input.fast}}
      slow: {call: held.nap, with: {seconds: $input.slow}}
      after_fast: {call: quick.stamp, with: fast}
      all: {call: sleeper.join, with: {a: after_fast, b: slow, c: fast}}
    output: all
"""


def test_a_step_starts_as_soon_as_its_inputs_are_ready(solve, servers, model_server):
    """'after_fast' waits for 'fast' only, not for 'slow', which runs beside it: 'slow'
    answers only once 'after_fast' has been called."""
    events: list[str] = []
    stamped = threading.Event()

    def reply(request: Any) -> dict[str, float]:
        return {"seconds": 0.0, "started": time.time(), "ended": time.time()}

    def fast(request, context):
        events.append("fast")
        return reply(request)

    def after_fast(request, context):
        events.append("after_fast")
        stamped.set()
        return reply(request)

    def slow(request, context):
        events.append("slow began")
        if not stamped.wait(WAIT):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "'after_fast' waited for 'slow'")
        events.append("slow ended")
        return reply(request)

    quick = servers(HandlerServer(sleeper.model(), "quick", {"nap": fast, "stamp": after_fast}))
    held = servers(HandlerServer(sleeper.model(), "held", {"nap": slow}))
    _, call = solve(
        EAGER,
        quick=quick.address,
        held=held.address,
        sleeper=model_server("sleeper").address,
    )
    call("eager", fast=0.0, slow=0.0, timeout=2 * WAIT)
    assert events.index("fast") < events.index("after_fast") < events.index("slow ended")
    assert events.index("slow began") < events.index("slow ended")


# ---------------------------------------------------------------- forwarding vs transcoding

WIDTHS = """
name: widths
models:
  w: {address: "@widths"}
methods:
  widen_int:
    steps:
      narrow: {call: w.narrow, with: $input}
      wide: {call: w.count, with: {n: narrow.n}}
    output: wide
  whole:
    steps:
      narrow: {call: w.narrow, with: $input}
      wide: {call: w.count, with: narrow}
    output: wide
  widen_float:
    steps:
      narrow: {call: w.narrow, with: $input}
      wide: {call: w.measure, with: {scale: narrow.scale}}
    output: wide
  reorder:
    steps:
      narrow: {call: w.narrow, with: $input}
      wide: {call: w.reorder, with: narrow}
    output: wide
  label:
    steps:
      narrow: {call: w.narrow, with: $input}
    output: narrow.label
  both:
    steps:
      # $input is NarrowRequest, whichever step is listed first: CountRequest would not do
      # for 'narrow', while 'count' accepts NarrowRequest (int32 n widens, the rest drops)
      counted: {call: w.count, with: $input}
      narrow: {call: w.narrow, with: $input}
      wide: {call: w.reorder, with: {label: counted.label, scale: narrow.scale, n: narrow.n}}
    output: wide
"""


@pytest.mark.parametrize(
    ("method", "forwarded", "transcoded", "expected"),
    [
        # int32 -> int64 is the same varint on the wire, even for a negative number
        pytest.param(
            "widen_int", 2, 0, {"n": -5, "scale": 0.0, "label": "count"}, id="int32-int64"
        ),
        # a reply with more fields than the request: they are unknown fields, skipped
        pytest.param("whole", 2, 0, {"n": -5, "scale": 0.0, "label": "count"}, id="extra-fields"),
        # float -> double: 4 bytes become 8, so the value is decoded and re-encoded
        pytest.param(
            "widen_float",
            1,
            1,
            {"n": 0, "scale": float(np.float32(0.1)), "label": "measure"},
            id="float-double",
        ),
        # the same fields by name under other numbers
        pytest.param(
            "reorder",
            1,
            1,
            {"n": -5, "scale": float(np.float32(0.1)), "label": "x"},
            id="renumbered",
        ),
        pytest.param("label", 1, 0, {"value": "x"}, id="output-field"),
        pytest.param(
            "both",
            5,
            0,
            {"n": -5, "scale": float(np.float32(0.1)), "label": "count"},
            id="one-input-for-two-requests",
        ),
    ],
)
def test_edges_are_forwarded_where_the_wire_allows(
    solve, model_server, method, forwarded, transcoded, expected
):
    solution, call = solve(WIDTHS, metrics=True, widths=model_server("widths").address)
    for _ in range(2):
        reply = call(method, n=-5, scale=0.1, label="x", timeout=10)
        assert {f.name: getattr(reply, f.name) for f in reply.DESCRIPTOR.fields} == expected
    counted = {m: solution.metrics.edges(method, m) for m in ("forwarded", "transcoded")}
    assert counted == {"forwarded": 2 * forwarded, "transcoded": 2 * transcoded}
    with urllib.request.urlopen(f"http://127.0.0.1:{solution.metrics_port}/metrics") as r:
        scrape = parse(r.read().decode())
    edges = scrape.series("modelwire_edges_total")
    by_mode = {"forwarded": 0.0, "transcoded": 0.0}
    for labels, value in edges.items():
        assert dict(labels)["method"] == method
        by_mode[dict(labels)["mode"]] += value
    assert by_mode == {"forwarded": 2.0 * forwarded, "transcoded": 2.0 * transcoded}

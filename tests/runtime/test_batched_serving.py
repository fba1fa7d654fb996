"""A batched method served for real: in this process and as `modelwire serve`, with the sync
and the aio server, over gRPC.

Each test holds the model busy with a first call (`hold` seconds, written to a log file when
its batch starts), sends the calls under test while it runs, and reads what formed from the
answers (each says the size of its batch) and from the log (one line per run of the batch
function). See tests/runtime/test_batcher.py for the policy's details, driven directly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from modelwire.bundle import dump
from tests.runtime import batched_model
from tests.runtime.batched_model import Flower
from tests.runtime.batching_calls import HOLD, hold_model, runs
from tests.runtime.serving import PATHS, Served, serve

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dump(batched_model.model(), "batched", tmp_path_factory.mktemp("batched") / "b")


@pytest.fixture(scope="module")
def servers(bundle: Path) -> Iterator[Callable[[str, str], Served]]:
    running: dict[tuple[str, str], Served] = {}

    def get(where: str, kind: str) -> Served:
        if (where, kind) not in running:
            running[(where, kind)] = serve(bundle, where, kind)
        return running[(where, kind)]

    yield get
    for served in running.values():
        served.close()


@pytest.fixture(params=PATHS)
def served(request: pytest.FixtureRequest, servers: Callable[[str, str], Served]) -> Served:
    return servers(*request.param)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as p:
        yield p


class Raw:
    """Raw calls of one rpc, for the exact status code and details."""

    def __init__(self, served: Served, method: str) -> None:
        rpc = served.client().schema.method(method).rpc
        self.invoke = served.rpc(rpc, timeout=30)
        self.encode = served.client().codec.method(method).encode_request
        self.decode = served.client().codec.method(method).decode_response

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        try:
            return "OK", tuple(self.decode(self.invoke(self.encode(args, kwargs))))
        except grpc.RpcError as exc:
            return exc.code().name, exc.details()

    def bytes(self, request: bytes) -> tuple[str, Any]:
        try:
            return "OK", tuple(self.decode(self.invoke(request)))
        except grpc.RpcError as exc:
            return exc.code().name, exc.details()


def test_calls_that_arrive_during_a_batch_go_together_as_the_next(served, pool, tmp_path):
    client = served.client()
    log = tmp_path / "runs"
    first = hold_model(pool, client, log)
    rest = [pool.submit(client.double, Flower(x, 0.0, str(log))) for x in (1.0, 2.0, 3.0)]
    assert tuple(first.result(30)) == (0.0, 1), "an idle model runs the call at once, alone"
    assert [tuple(f.result(30)) for f in rest] == [(2.0, 3), (4.0, 3), (6.0, 3)]
    assert runs(log) == [["0"], ["1", "2", "3"]]


def test_sequential_calls_each_run_at_once_alone(served):
    client = served.client()
    assert [tuple(client.double(Flower(x, 0.0, ""))) for x in (1.0, 2.0, 3.0)] == [
        (2.0, 1),
        (4.0, 1),
        (6.0, 1),
    ]


def test_several_parameters_and_unbatched_methods_beside_them(served):
    client = served.client()
    assert client.add(1.5, 2) == 3.5
    assert client.add(a=-1.0, b=1) == 0.0
    assert client.plain(1.0) == 2.0


def test_a_request_that_fails_to_decode_fails_alone(served, pool, tmp_path):
    client = served.client()
    log = tmp_path / "runs"
    raw = Raw(served, "double")
    first = hold_model(pool, client, log)
    bad = pool.submit(raw.bytes, b"\x0a\xff\xff")  # field 1 (a double) sent as bytes
    good = [pool.submit(raw, Flower(x, 0.0, str(log))) for x in (1.0, 2.0)]
    code, details = bad.result(30)
    assert code == "INVALID_ARGUMENT"
    assert details.startswith("double: invalid request: ")
    first.result(30)
    assert [g.result(30) for g in good] == [("OK", (2.0, 2)), ("OK", (4.0, 2))]
    assert runs(log) == [["0"], ["1", "2"]]


def test_only_the_requests_that_make_the_model_raise_fail_with_their_unbatched_status(
    served, pool, tmp_path
):
    client = served.client()
    raw = Raw(served, "double")
    alone = {x: raw(Flower(x, 0.0, "")) for x in (-2.0, 13.0)}  # unbatched: a batch of one
    assert alone == {
        -2.0: (
            "INVALID_ARGUMENT",
            "double: the model rejected the request: ValueError: x must not be negative, got -2",
        ),
        13.0: (
            "INTERNAL",
            "double: the model raised LookupError; the traceback is in the server's log",
        ),
    }
    log = tmp_path / "runs"
    first = hold_model(pool, client, log)
    calls = {x: pool.submit(raw, Flower(x, 0.0, str(log))) for x in (1.0, -2.0, 13.0, 4.0)}
    first.result(30)
    got = {x: f.result(30) for x, f in calls.items()}
    assert got[-2.0] == alone[-2.0]
    assert got[13.0] == alone[13.0]
    assert got[1.0][0] == got[4.0][0] == "OK"
    assert (got[1.0][1][0], got[4.0][1][0]) == (2.0, 8.0)
    assert runs(log)[1] == ["-2", "1", "4", "13"], "they were queued together"
    assert ["-2"] in runs(log) and ["13"] in runs(log), "each culprit ran alone at last"


def test_a_batch_function_returning_the_wrong_count_is_internal_naming_both_counts(served):
    assert Raw(served, "drop_one")(2.0) == (
        "INTERNAL",
        "drop_one: the model returned a value that does not fit its declared response: the "
        "batch function returned 0 results for 1 request",
    )


def test_a_deadline_that_passes_in_the_queue_is_deadline_exceeded_and_never_runs(
    served, pool, tmp_path
):
    client = served.client()
    log = tmp_path / "runs"
    first = hold_model(pool, client, log)
    call = client.schema.method("double").rpc
    invoke = served.rpc(call, timeout=0.3)
    encode = client.codec.method("double").encode_request
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        invoke(encode((Flower(7.0, 0.0, str(log)),), {}))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - t0 < HOLD, "answered at its deadline, not after the batch"
    first.result(30)
    assert tuple(client.double(Flower(8.0, 0.0, str(log)))) == (16.0, 1)
    assert runs(log) == [["0"], ["8"]], "the model never ran for the late call"


def test_a_cancelled_call_leaves_its_batch(served, pool, tmp_path):
    client = served.client()
    log = tmp_path / "runs"
    first = hold_model(pool, client, log)
    encode = client.codec.method("double").encode_request
    with grpc.insecure_channel(served.address) as channel:
        call = channel.unary_unary(f"/{served.service}/Double")
        gone = call.future(encode((Flower(9.0, 0.0, str(log)),), {}), timeout=30)
        time.sleep(0.2)  # queued behind the holding call
        assert gone.cancel()
        stays = call.future(encode((Flower(5.0, 0.0, str(log)),), {}), timeout=30)
        first.result(30)
        stays.result(30)
    assert runs(log) == [["0"], ["5"]], "the model never ran for the cancelled call"


def test_many_callers_share_few_batches(served, tmp_path):
    """32 calls from 8 threads at once: every answer is its own, in fewer batches than calls."""
    client = served.client()
    log = tmp_path / "runs"
    results: dict[float, tuple[Any, ...]] = {}

    def caller(k: int) -> None:
        for i in range(4):
            x = float(100 + 10 * k + i)  # 13 would fail
            results[x] = tuple(client.double(Flower(x, 0.01, str(log))))

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert {x: y for x, (y, _) in results.items()} == {
        float(100 + 10 * k + i): 2.0 * (100 + 10 * k + i) for k in range(8) for i in range(4)
    }
    batches = runs(log)
    assert sum(len(b) for b in batches) == 32
    assert len(batches) < 32
    assert max(len(b) for b in batches) <= 4, "max_batch_size=4"

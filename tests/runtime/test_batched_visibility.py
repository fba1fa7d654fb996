"""What an operator sees of batching in `modelwire serve`: the policy logged at start, the
batch size in the access log, batch size and queue wait histograms on `--metrics-port`
(merged across `--workers`)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelwire.bundle import dump
from modelwire.hosting.metrics import BATCH_SIZE_BUCKETS
from tests.runtime import batched_model, prometheus
from tests.runtime.batched_model import Flower
from tests.runtime.batching_calls import hold_model, runs
from tests.runtime.serving import SERVER_KINDS, Served, json_logs, serve, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return dump(batched_model.model(), "batched", tmp_path_factory.mktemp("batched") / "b")


@pytest.fixture
def serve_batched(bundle: Path) -> Iterator[object]:
    running: list[Served] = []

    def start(kind: str, *flags: str) -> Served:
        served = serve(bundle, "subprocess", kind, *flags)
        running.append(served)
        return served

    yield start
    for served in running:
        served.close()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as p:
        yield p


def _records(served: Served, logger: str) -> list[dict[str, object]]:
    return [r for r in json_logs(served.stderr()) if r["logger"] == logger]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_serve_logs_each_batched_methods_policy_at_start(serve_batched, kind):
    served = serve_batched(kind)
    policies = [
        (r["level"], r["message"], r["rpc"], r["max_batch_size"], r["max_delay_ms"])
        for r in _records(served, "modelwire.runtime.server")
        if "max_batch_size" in r
    ]
    assert policies == [
        ("info", "double is batched: batches of up to 4 calls, run as soon as the model is free",
         "double", 4, 0.0),
        ("info", "drop_one is batched: batches of up to 8 calls, run as soon as the model is free",
         "drop_one", 8, 0.0),
        ("info", "add is batched: batches of up to 8 calls, run as soon as the model is free",
         "add", 8, 0.0),
    ]  # fmt: skip
    assert not [r for r in json_logs(served.stderr()) if r["level"] == "warning"]


def test_the_sync_server_warns_when_its_threads_cap_the_batches(serve_batched):
    served = serve_batched("sync", "--threads", "2")
    warnings = [r["message"] for r in json_logs(served.stderr()) if r["level"] == "warning"]
    assert warnings == [
        f"{name}: the sync server's 2 threads hold at most 2 calls at once, so its batches stay "
        f"at or below 2; serve with --threads {size} or --server aio for batches of up to {size}"
        for name, size in (("double", 4), ("drop_one", 8), ("add", 8))
    ]
    aio = serve_batched("aio", "--threads", "2")
    assert not [r for r in json_logs(aio.stderr()) if r["level"] == "warning"]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_the_access_log_notes_the_batch_size(serve_batched, pool, tmp_path, kind):
    served = serve_batched(kind, "--access-log")
    client = served.client()
    log = tmp_path / "runs"
    first = hold_model(pool, client, log)
    rest = [pool.submit(client.double, Flower(x, 0.0, str(log))) for x in (1.0, 2.0)]
    first.result(30)
    for f in rest:
        f.result(30)
    assert client.plain(1.0) == 2.0
    wait_for(lambda: served.stderr().count('"modelwire.runtime.access"') == 4, 10, "4 lines")
    access = _records(served, "modelwire.runtime.access")
    assert [(r["rpc"], r["status"], r.get("batch")) for r in access] == [
        ("Double", "OK", 1),
        ("Double", "OK", 2),
        ("Double", "OK", 2),
        ("Plain", "OK", None),
    ]
    for r in access[:3]:
        rpc, status, ms, unit, word, size = str(r["message"]).split(" ")
        assert (rpc, status, unit, word, int(size)) == (
            r["rpc"],
            r["status"],
            "ms",
            "batch",
            r["batch"],
        )
        assert abs(float(ms) - float(r["ms"])) <= 0.01  # type: ignore[arg-type]
    assert str(access[3]["message"]).split(" ")[3:] == ["ms"], "unbatched lines are as they were"


def _scrape(served: Served) -> prometheus.Scrape:
    ports = [r["metrics_port"] for r in json_logs(served.stderr()) if "metrics_port" in r]
    assert len(ports) == 1, served.stderr()
    with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics", timeout=10) as reply:
        return prometheus.parse(reply.read().decode())


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(("sync",), id="sync"),
        pytest.param(("aio",), id="aio"),
        pytest.param(("sync", "--workers", "2"), id="sync-2-workers"),
    ],
)
def test_metrics_have_batch_sizes_and_queue_waits_per_method(serve_batched, pool, tmp_path, flags):
    served = serve_batched(*flags, "--metrics-port", "0")
    client = served.client()  # one channel: one connection, so one worker gets every call
    log = tmp_path / "runs"
    first = hold_model(pool, client, log)
    rest = [pool.submit(client.double, Flower(x, 0.0, str(log))) for x in (1.0, 2.0, 3.0)]
    assert tuple(first.result(30)) == (0.0, 1)
    assert [tuple(f.result(30))[1] for f in rest] == [3, 3, 3]
    assert runs(log) == [["0"], ["1", "2", "3"]]

    scrape = _scrape(served)
    assert scrape.types["modelwire_batch_size"] == "histogram"
    assert scrape.types["modelwire_batch_queue_wait_seconds"] == "histogram"
    size = "modelwire_batch_size"
    assert scrape.value(f"{size}_count", method="double") == 2
    assert scrape.value(f"{size}_sum", method="double") == 4
    assert [
        scrape.value(f"{size}_bucket", method="double", le=str(float(le))) for le in (1, 2, 4)
    ] == [1, 1, 2]
    assert (
        len([s for s in scrape.series(f"{size}_bucket") if ("method", "double") in s])
        == len(BATCH_SIZE_BUCKETS) + 1
    )
    wait = "modelwire_batch_queue_wait_seconds"
    assert scrape.value(f"{wait}_count", method="double") == 4
    assert 0 < scrape.value(f"{wait}_sum", method="double") < 4 * 30
    # declared at start, so a dashboard sees every batched method before its first call
    assert scrape.value(f"{size}_count", method="add") == 0
    assert scrape.get(f"{size}_count", -1, method="plain") == -1, "plain is not batched"
    assert (
        scrape.value("modelwire_requests_total", method="double", code="OK", protocol="grpc") == 4
    )

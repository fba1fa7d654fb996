"""`modelwire serve --workers N`: N processes on one port, merged metrics, and SIGTERM stops
every one of them (no orphans)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import urllib.request

import grpc
import pytest

from tests.hosting.client import Client as HttpClient
from tests.runtime import prometheus
from tests.runtime.serving import Served, has_ipv6_loopback, json_logs, process_alive, wait_for

PID = "/modelwire.models.slow.v1.SlowService/Pid"


def _metrics_port(served: Served) -> int:
    ports = [r["metrics_port"] for r in json_logs(served.stderr()) if "metrics_port" in r]
    assert len(ports) == 1, served.stderr()
    return int(ports[0])


def _scrape(host: str, port: int) -> prometheus.Scrape:
    host = f"[{host}]" if ":" in host else host
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as reply:
        return prometheus.parse(reply.read().decode())


def _pids_over_separate_connections(served: Served, connections: int) -> list[int]:
    """Call Pid once on each of `connections` channels: each channel is one TCP connection,
    and the kernel picks a worker per connection."""
    decode = served.client().codec.method("pid").decode_response
    pids = []
    for i in range(connections):
        # a distinct channel argument keeps grpc from sharing one subchannel between channels
        options = [("grpc.use_local_subchannel_pool", 1), ("test.connection", i)]
        with grpc.insecure_channel(served.address, options=options) as channel:
            pids.append(decode(channel.unary_unary(PID)(b"", timeout=10)))
    return pids


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"modelwire.runtime.workers" in f.read()
    except OSError:
        return False


@pytest.fixture
def reap():
    """Kill, after the test, any worker the test saw that is still running (if it failed)."""
    pids: set[int] = set()
    yield pids
    for pid in pids:
        if process_alive(pid) and _is_worker(pid):  # not a recycled pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_workers_share_the_port_and_sigterm_stops_them_all(own_server, reap, tmp_path):
    served = own_server("slow", "subprocess", "sync", "--workers", "2", "--metrics-port", "0")
    supervisor = served.process.proc.pid
    pids = _pids_over_separate_connections(served, 24)
    reap.update(pids)
    workers = set(pids)
    assert len(workers) == 2, pids  # served by both processes; 2**-23 odds of a false failure
    assert supervisor not in workers
    assert {_parent(pid) for pid in workers} == {supervisor}

    scrape = _scrape("127.0.0.1", _metrics_port(served))  # merged across the workers
    assert scrape.value("modelwire_requests_total", method="pid", code="OK", protocol="grpc") == 24
    assert (
        scrape.value("modelwire_request_duration_seconds_count", method="pid", protocol="grpc")
        == 24
    )
    assert scrape.value("modelwire_model_info", model="slow", version="1.0.0") == 1

    client = served.client()
    in_flight = []
    started = tmp_path / "started"
    thread = threading.Thread(
        target=lambda: in_flight.append(client.sleep(1.0, str(started))), daemon=True
    )
    thread.start()
    wait_for(started.exists, 10, "a worker to start the call")
    served.process.proc.send_signal(signal.SIGTERM)
    thread.join(15)
    assert len(in_flight) == 1 and in_flight[0] in workers, served.stderr()
    assert served.process.proc.wait(30) == 0, served.stderr()
    wait_for(lambda: not any(process_alive(p) for p in workers), 5, "the workers to end")
    messages = [r["message"] for r in json_logs(served.stderr())]
    assert "SIGTERM received: stopping 2 workers" in messages
    assert messages.count("stopped") == 2


@pytest.mark.parametrize("host", ["127.0.0.2", "::1"])
def test_workers_on_another_loopback_address(own_server, reap, host):
    """The listening line brackets IPv6, and the merged metrics still see every worker."""
    if ":" in host and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    served = own_server(
        "slow", "subprocess", "sync", "--workers", "2", "--metrics-port", "0", "--host", host
    )
    bracketed = f"[{host}]" if ":" in host else host
    assert served.address.startswith(f"{bracketed}:")
    http = served.process.http_address
    assert http is not None and http.startswith(f"{bracketed}:")
    assert served.process.stdout_lines == [
        f"modelwire runtime http on {http}\n",
        f"modelwire runtime listening on {served.address}\n",
    ]
    reap.update(_pids_over_separate_connections(served, 4))
    scrape = _scrape(host, _metrics_port(served))
    assert scrape.value("modelwire_requests_total", method="pid", code="OK", protocol="grpc") == 4
    assert served.process.terminate() == 0


def test_a_worker_that_dies_is_replaced(own_server, reap):
    served = own_server("slow", "subprocess", "sync", "--workers", "2")
    before = set(_pids_over_separate_connections(served, 16))
    reap.update(before)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: "restarting it" in served.stderr(), 10, "the supervisor to notice")
    wait_for(
        lambda: len(set(_pids_over_separate_connections(served, 8)) - before) == 1,
        20,
        "calls to reach the new worker",
    )
    after = set(_pids_over_separate_connections(served, 16))
    reap.update(after)
    assert victim not in after
    errors = [r for r in json_logs(served.stderr()) if r["level"] == "error"]
    # once, with its signal and its last log lines
    [message] = [r["message"] for r in errors]
    assert re.fullmatch(
        rf"worker [01] \(pid {victim}\) was killed by SIGKILL after serving [0-9.]+ s; "
        r"restarting it (at once|in [0-9.]+ s); its last log lines:\n(    .*\n?)+",
        message,
    ), message
    assert served.process.terminate() == 0
    assert not any(process_alive(p) for p in before | after)


def test_workers_follow_a_killed_supervisor(own_server, reap):
    """SIGKILL leaves the supervisor no chance to stop its workers; they ask the kernel
    for SIGTERM when it dies (PR_SET_PDEATHSIG), so nothing keeps serving the port."""
    served = own_server("slow", "subprocess", "sync", "--workers", "2")
    supervisor = served.process.proc.pid
    workers = set(_pids_over_separate_connections(served, 24))
    reap.update(workers)
    assert {_parent(pid) for pid in workers} == {supervisor}
    served.process.proc.kill()
    served.process.proc.wait(10)
    wait_for(lambda: not any(process_alive(p) for p in workers), 15, "the workers to end")


def _metrics_dir(pid: int) -> str:
    """The PROMETHEUS_MULTIPROC_DIR a worker was started with."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    return env[b"PROMETHEUS_MULTIPROC_DIR"].decode()


def test_a_dead_workers_counts_stay_merged_and_the_directory_goes(own_server, reap):
    """Counters never go backwards when a worker dies and is replaced (its files stay in
    the run's directory; only its live gauge is dropped), and SIGTERM removes the
    directory."""
    served = own_server("slow", "subprocess", "sync", "--workers", "2", "--metrics-port", "0")
    port = _metrics_port(served)
    made = _pids_over_separate_connections(served, 16)
    reap.update(made)
    workers = set(made)
    assert len(workers) == 2, made
    (directory,) = {_metrics_dir(pid) for pid in workers}
    assert os.path.isdir(directory)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: "restarting it" in served.stderr(), 10, "the supervisor to notice")

    def new_worker_answers() -> bool:
        made.extend(_pids_over_separate_connections(served, 8))
        return len(set(made) - workers) == 1

    wait_for(new_worker_answers, 20, "calls to reach the new worker")
    reap.update(made)
    scrape = _scrape("127.0.0.1", port)
    assert made.count(victim) > 0
    assert scrape.value(
        "modelwire_requests_total", method="pid", code="OK", protocol="grpc"
    ) == len(made)
    assert scrape.value(
        "modelwire_request_duration_seconds_count", method="pid", protocol="grpc"
    ) == len(made)
    assert scrape.series("modelwire_model_info") == {
        frozenset({("model", "slow"), ("version", "1.0.0")}): 1
    }
    assert served.process.terminate() == 0, served.stderr()
    assert not os.path.exists(directory)


def test_every_worker_serves_http_on_the_one_http_port_and_its_metrics_are_merged(own_server, reap):
    """Each new HTTP connection may reach another worker; every worker's /metrics adds up
    all of them (no --metrics-port needed)."""
    served = own_server("slow", "subprocess", "sync", "--workers", "2")
    http = served.process.http_address
    assert http is not None
    host, _, port = http.rpartition(":")
    pids = []
    for _ in range(16):  # one connection each
        client = HttpClient(int(port), host)
        try:
            reply = client.post("/modelwire.models.slow.v1.SlowService/Pid", {})
        finally:
            client.close()
        assert reply.status == 200, reply.body
        pids.append(int(reply.json()["value"]))
    reap.update(pids)
    assert len(set(pids)) == 2, pids
    assert all(_parent(pid) == served.process.proc.pid for pid in pids)
    for _ in range(4):  # whichever worker answers the scrape
        client = HttpClient(int(port), host)
        try:
            scrape = prometheus.parse(client.get("/metrics").body.decode())
        finally:
            client.close()
        assert scrape.value(
            "modelwire_requests_total", method="pid", code="OK", protocol="connect"
        ) == len(pids)
    assert served.process.terminate() == 0, served.stderr()

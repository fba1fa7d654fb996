"""`wait_serving`: the one poll of grpc.health.v1 until SERVING, which fails fast when the
process or container behind the address is gone."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from modelwire.errors import ServiceError
from modelwire.hosting.host import ServiceHost
from modelwire.hosting.remote import wait_serving
from tests.hosting.servers import spec

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_returns_the_address_once_it_reports_serving():
    with ServiceHost(spec()).start() as host:
        assert wait_serving(host.address, 10) == host.address


def test_an_address_known_only_later_is_polled_once_known():
    with ServiceHost(spec()).start() as host:
        asked: list[int] = []

        def address() -> str | None:
            asked.append(1)
            return host.address if len(asked) >= 3 else None

        assert wait_serving(address, 10, interval=0.01) == host.address
        assert len(asked) == 3


def test_a_gone_process_fails_the_wait_at_once_with_its_reason():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    proc.wait(10)

    def alive() -> str | None:
        return None if proc.poll() is None else f"the server exited with status {proc.returncode}"

    t0 = time.monotonic()
    with pytest.raises(ServiceError) as info:
        wait_serving(f"127.0.0.1:{_free_port()}", 30, alive=alive)
    assert str(info.value) == "the server exited with status 3"
    assert time.monotonic() - t0 < 5  # not the 30 s timeout


def test_a_server_not_serving_times_out_saying_what_it_reports():
    server = grpc.server(futures.ThreadPoolExecutor(2))  # a plain grpcio server, not ours
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(ServiceError) as info:
            wait_serving(f"127.0.0.1:{port}", 0.3, what="model 'm'")
    finally:
        server.stop(0).wait()
    assert (
        str(info.value) == "model 'm' never reported SERVING within 0.3 s (it reports NOT_SERVING)"
    )
    assert info.value.target == f"127.0.0.1:{port}"


def test_nothing_listening_times_out_naming_the_address():
    address = f"127.0.0.1:{_free_port()}"
    with pytest.raises(ServiceError) as info:
        wait_serving(address, 0.3)
    assert str(info.value).startswith(f"{address} never reported SERVING within 0.3 s ({address}")

"""The one service host: every face starts, turns SERVING, drains and stops in that order,
reading one shared state; a face or metrics port that cannot bind leaves nothing running;
`run()` announces the bound address and drains on a signal, sync and aio alike."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket

import pytest

from modelwire.errors import ConfigError
from modelwire.hosting.binding import check_port_free
from modelwire.hosting.host import AioServiceHost, Listen, ServiceHost, Serving, ServingState
from modelwire.hosting.remote import health_status
from tests.hosting.servers import SERVICE, ReadinessFace, spec

pytestmark = pytest.mark.timeout(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_face_sees_serving_then_draining_then_stop():
    state = ServingState()
    face = ReadinessFace(state)
    host = ServiceHost(spec(), faces=[face], state=state)
    host.start()
    assert host.state.status is Serving.SERVING
    assert health_status(host.address) == "SERVING"
    assert health_status(host.address, SERVICE) == "SERVING"
    assert face.ask() == "ready"
    host.stop(3)
    assert face.events == [
        ("start", None, "starting"),
        ("set_serving", True, "serving"),
        ("set_serving", False, "draining"),
        ("stop", 3, "draining"),
    ]
    assert host.state.status is Serving.STOPPED
    host.stop(3)  # only the first stop drains
    assert len(face.events) == 4


def test_a_face_that_cannot_bind_leaves_nothing_running():
    grpc_port = _free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        state = ServingState()
        face = ReadinessFace(state, taken)
        host = ServiceHost(spec(listen=Listen("127.0.0.1", grpc_port)), faces=[face], state=state)
        with pytest.raises(ConfigError) as info:
            host.start()
    assert str(info.value) == f"readiness_port={taken}: cannot listen (Address already in use)"
    assert host.state.status is Serving.STOPPED
    check_port_free("127.0.0.1", grpc_port)  # the gRPC face was started, and stopped again


def test_a_busy_metrics_port_leaves_nothing_running():
    grpc_port = _free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        host = ServiceHost(
            spec(listen=Listen("127.0.0.1", grpc_port), metrics=lambda: b"", metrics_port=taken)
        )
        with pytest.raises(ConfigError) as info:
            host.start()
    assert str(info.value) == (
        f"metrics_port={taken}: cannot serve metrics on 127.0.0.1:{taken} (Address already in use)"
    )
    check_port_free("127.0.0.1", grpc_port)


def test_a_metrics_port_equal_to_the_port_is_refused():
    with pytest.raises(ConfigError) as info:
        spec(listen=Listen("127.0.0.1", 50999), metrics=lambda: b"", metrics_port=50999)
    assert str(info.value) == "metrics_port=50999: is the gRPC port too; choose another one"


def _announce_and_signal(lines: list[str]):
    def announce(line: str) -> None:
        lines.append(line)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler is in place before the line

    return announce


def test_run_announces_the_bound_address_then_drains_on_sigterm(caplog):
    """A wildcard host is announced as bound; clients on this machine use 127.0.0.1."""
    caplog.set_level(logging.INFO, logger="modelwire.hosting.host")
    lines: list[str] = []
    host = ServiceHost(spec(listen=Listen("0.0.0.0", 0), grace=7)).start()
    assert host.run(_announce_and_signal(lines)) == signal.SIGTERM
    assert lines == [f"test listening on 0.0.0.0:{host.port}"]
    assert host.address == f"127.0.0.1:{host.port}"
    assert host.state.status is Serving.STOPPED
    assert [r.getMessage() for r in caplog.records] == [
        "SIGTERM received: draining in-flight calls (up to 7 s)"
    ]


def test_the_aio_host_runs_the_same_way(caplog):
    caplog.set_level(logging.INFO, logger="modelwire.hosting.host")
    lines: list[str] = []

    async def main() -> tuple[int, AioServiceHost]:
        host = await AioServiceHost(
            spec(listen=Listen("127.0.0.1", 0), metrics=lambda: b"# empty\n", metrics_port=0)
        ).start()
        try:
            assert await asyncio.to_thread(health_status, host.address) == "SERVING"
        except BaseException:
            await host.stop(0)
            raise
        return await host.run(_announce_and_signal(lines)), host

    signum, host = asyncio.run(main())
    assert signum == signal.SIGTERM
    assert lines == [f"test listening on 127.0.0.1:{host.port}"]
    assert host.state.status is Serving.STOPPED
    assert [r.getMessage() for r in caplog.records] == [
        f"metrics at http://127.0.0.1:{host.metrics_port}/metrics",
        "SIGTERM received: draining in-flight calls (up to 10 s)",
    ]


def test_catalog_serve_drains_like_every_server(tmp_path):
    """The catalog's SIGTERM goes through the same host: the same drain line as serve and
    run (it said only 'SIGTERM received: stopping' before)."""
    from tests.catalog.helpers import CatalogProcess
    from tests.runtime.serving import json_logs

    catalog = CatalogProcess(tmp_path / "data", "--init")
    try:
        assert catalog.terminate() == 0, catalog.stderr
    finally:
        catalog.kill()
    messages = [r["message"] for r in json_logs(catalog.stderr)]
    assert "SIGTERM received: draining in-flight calls (up to 10 s)" in messages, catalog.stderr
    assert "SIGTERM received: stopping" not in messages


def test_run_announces_every_faces_line_before_its_own():
    lines: list[str] = []
    state = ServingState()
    face = ReadinessFace(state)
    host = ServiceHost(spec(), faces=[face], state=state).start()
    assert host.run(_announce_and_signal_on(lines, "test listening on")) == signal.SIGTERM
    assert lines == [
        f"readiness on 127.0.0.1:{face.port}",
        f"test listening on 127.0.0.1:{host.port}",
    ]


def _announce_and_signal_on(lines: list[str], last: str):
    def announce(line: str) -> None:
        lines.append(line)
        if line.startswith(last):
            os.kill(os.getpid(), signal.SIGTERM)

    return announce


def _echo_face(loaded_bundle, state: ServingState, **options):
    from modelwire.hosting.http_face import HttpFace
    from modelwire.runtime.http_handlers import unary_handlers
    from modelwire.runtime.service import ModelService

    service = ModelService(loaded_bundle("echo"))
    return HttpFace(service.schema, unary_handlers(service), ready=lambda: state.ready, **options)


def test_the_http_listener_answers_readyz_from_the_hosts_state(loaded_bundle):
    from modelwire.hosting.http_host import HttpListen, HttpListener
    from tests.hosting.client import Client

    state = ServingState()
    listener = HttpListener(
        _echo_face(loaded_bundle, state, threads=2), HttpListen(listening="x on")
    )
    listener.start()
    client = Client(listener.port)
    try:
        assert listener.announcement() == f"x on 127.0.0.1:{listener.port}"
        seen = [client.get("/readyz").status]
        state.advance(Serving.SERVING)
        seen.append(client.get("/readyz").status)
        state.advance(Serving.DRAINING)
        seen.append(client.get("/readyz").status)
        assert seen == [503, 200, 503]
        assert client.get("/healthz").status == 200  # alive while it drains
    finally:
        client.close()
        listener.stop(1)
    with pytest.raises(ConnectionError):
        Client(listener.port, timeout=2).get("/healthz")


def test_the_aio_http_listener_serves_on_the_hosts_loop(loaded_bundle):
    from modelwire.hosting.http_host import AioHttpListener, HttpListen
    from tests.hosting.client import Client

    async def main() -> tuple[int, list[int], int]:
        state = ServingState()
        listener = AioHttpListener(_echo_face(loaded_bundle, state), HttpListen())
        host = await AioServiceHost(spec(), [listener], state=state).start()
        client = Client(listener.port)
        try:
            # the blocking client runs on a thread: the loop serves it meanwhile
            replies = [
                await asyncio.to_thread(client.get, "/readyz"),
                await asyncio.to_thread(
                    client.post, "/modelwire.models.echo.v1.EchoService/Add", {"a": 1, "b": 2}
                ),
            ]
        finally:
            client.close()
            await host.stop(1)
        return listener.port, [r.status for r in replies], replies[1].json()["value"]

    port, statuses, value = asyncio.run(main())
    assert (statuses, value) == ([200, 200], 3.0)
    check_port_free("127.0.0.1", port, "http_port")  # stopped with the host


def test_the_aio_http_servers_connections_have_tcp_nodelay(loaded_bundle):
    """asyncio's own loop sets TCP_NODELAY only on sockets made with IPPROTO_TCP; without it
    uvicorn's head and body writes waited for delayed ACKs: 40 ms more on every answer of
    the aio server's HTTP face."""
    from modelwire.hosting.http_server import AioHttpServer
    from tests.hosting.client import Client

    async def main() -> list[int]:
        server = AioHttpServer(_echo_face(loaded_bundle, ServingState()))
        await server.start()
        client = Client(server.port)
        try:
            await asyncio.to_thread(client.get, "/healthz")  # the connection stays open
            connections = list(server._server.server_state.connections)
            return [
                c.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for c in connections
            ]
        finally:
            client.close()
            await server.stop(0)

    flags = asyncio.run(main())  # asyncio's default loop, as `serve --server aio` runs
    assert len(flags) == 1 and flags[0] != 0

"""Graceful shutdown: SIGTERM (or stop() in process) lets in-flight calls finish, refuses new
ones, and `modelwire serve` then exits 0."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from modelwire import connect
from tests.runtime.serving import SERVER_KINDS, Served, json_logs, wait_for


def _slow_call(
    served: Served, seconds: float, tmp_path: Path
) -> tuple[threading.Thread, dict[str, object]]:
    """Start `sleep(seconds)` on a client of its own and return once the model runs it;
    returns (thread, result)."""
    client = connect(served.address)
    started = tmp_path / f"started-{time.monotonic_ns()}"
    result: dict[str, object] = {}

    def run() -> None:
        t0 = time.monotonic()
        try:
            result["value"] = client.sleep(seconds, str(started))
        except Exception as exc:
            result["error"] = exc
        finally:
            result["seconds"] = time.monotonic() - t0
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(started.exists, 10, "the model to start the call")
    return thread, result


def _new_call_status(address: str) -> str:
    """The status of a Pid call on a fresh channel (one new connection)."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary("/modelwire.models.slow.v1.SlowService/Pid")
        try:
            call(b"", timeout=5)
        except grpc.RpcError as exc:
            return exc.code().name
    return "OK"


def _refused_status(address: str) -> str:
    """Make new calls until one fails (shutdown has begun); that call's status."""
    deadline = time.monotonic() + 5
    while (status := _new_call_status(address)) == "OK" and time.monotonic() < deadline:
        time.sleep(0.02)
    return status


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_sigterm_drains_in_flight_calls_then_exits_0(own_server, kind, tmp_path):
    served = own_server("slow", "subprocess", kind, grace=10)
    proc = served.process
    thread, result = _slow_call(served, 1.0, tmp_path)
    proc.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "SIGTERM received" in proc.stderr, 10, "the server to see SIGTERM")
    assert _refused_status(served.address) == "UNAVAILABLE"
    thread.join(15)
    assert result.get("value") == proc.proc.pid, (result, proc.stderr)
    assert result["seconds"] >= 1.0
    assert proc.proc.wait(15) == 0, proc.stderr
    messages = [r["message"] for r in json_logs(proc.stderr)]
    assert messages[-2:] == ["SIGTERM received: draining in-flight calls (up to 10 s)", "stopped"]


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_stop_in_process_drains_in_flight_calls(own_server, kind, tmp_path):
    served = own_server("slow", "in-process", kind)
    thread, result = _slow_call(served, 1.0, tmp_path)
    stopper = threading.Thread(target=served.handle.stop, args=(10,), daemon=True)
    stopper.start()
    if kind == "sync":  # the aio server runs the model on its loop: stop() waits for it
        assert _refused_status(served.address) == "UNAVAILABLE"
        assert thread.is_alive()
    thread.join(15)
    stopper.join(15)
    assert not stopper.is_alive()
    assert isinstance(result.get("value"), int), result
    assert result["seconds"] >= 1.0
    assert _new_call_status(served.address) == "UNAVAILABLE"


def test_sigint_stops_like_sigterm(own_server):
    served = own_server("slow", "subprocess", "sync")
    served.process.proc.send_signal(signal.SIGINT)
    assert served.process.proc.wait(15) == 0
    messages = [r["message"] for r in json_logs(served.process.stderr)]
    assert "SIGINT received: draining in-flight calls (up to 10 s)" in messages


def _watch(address: str, seen: list[str]) -> threading.Thread:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def run() -> None:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                for reply in stub.Watch(health_pb2.HealthCheckRequest(), timeout=30):
                    seen.append(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
                seen.append("end of stream")
            except grpc.RpcError as exc:
                seen.append(exc.code().name)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_health_watch_sees_not_serving_and_does_not_hold_up_shutdown(own_server, kind):
    served = own_server("slow", "subprocess", kind, grace=20)
    seen: list[str] = []
    thread = _watch(served.address, seen)
    wait_for(lambda: seen == ["SERVING"], 10, "the watch to report SERVING")
    t0 = time.monotonic()
    served.process.proc.send_signal(signal.SIGTERM)
    assert served.process.proc.wait(15) == 0, served.stderr()
    assert time.monotonic() - t0 < 5  # not the 20 s grace period
    thread.join(10)
    assert seen == ["SERVING", "NOT_SERVING", "end of stream"]

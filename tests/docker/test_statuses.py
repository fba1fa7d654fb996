"""A model's failures and bad input get the same gRPC statuses from its container as from
`modelwire serve` on this host: the image changes where the model runs, nothing else."""

from __future__ import annotations

import time

import grpc
import pytest

from modelwire.errors import ServiceError
from modelwire.runtime.client import connect

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

CRASH = "/modelwire.models.faulty.v1.FaultyService/Crash"


def outcomes(address: str) -> list[tuple[str, str]]:
    """(status, message) of each failing call, then of undecodable bytes, then health."""
    seen = []
    with connect(address) as model:
        for method in ("crash", "wrong_type", "bad_result", "exits"):
            try:
                getattr(model, method)(1.5)
            except ServiceError as exc:
                seen.append((exc.status, exc.details))
            else:
                seen.append(("OK", ""))
    with grpc.insecure_channel(address) as channel:
        try:
            call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(CRASH)
            call(b"\xff\xff\xff", timeout=10)
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            seen.append((exc.code().name, exc.details() or ""))
    with connect(address) as model:  # still serving after all that
        seen.append(("wrong_type again", model.wrong_type.name))
    return seen


def test_model_errors_and_bad_input_get_the_same_statuses_as_locally(
    faulty_image, bundles, run_container, serve_process
):
    in_container = outcomes(run_container(faulty_image).address)
    assert in_container == outcomes(serve_process(bundles["faulty"]).address)
    assert in_container == [
        ("INTERNAL", "crash: the model raised LookupError; the traceback is in the server's log"),
        (
            "INVALID_ARGUMENT",
            "wrong_type: the model rejected the request: TypeError: x must be a whole number, "
            "got 1.5",
        ),
        (
            "INTERNAL",
            "bad_result: the model returned a value that does not fit its declared response: "
            "value: expected an integer, got str 'not an int'",
        ),
        ("INTERNAL", "exits: the model raised SystemExit; the traceback is in the server's log"),
        (
            "INVALID_ARGUMENT",
            "crash: invalid request: the bytes are not a valid CrashRequest: Error parsing "
            "message with type 'modelwire.models.faulty.v1.CrashRequest': Wire format was corrupt",
        ),
        ("wrong_type again", "wrong_type"),
    ]


def test_the_traceback_stays_in_the_containers_log(faulty_image, run_container):
    running = run_container(faulty_image)
    with connect(running.address) as model, pytest.raises(ServiceError):
        model.crash(7.0)
    # the engine collects a container's output asynchronously: the line may arrive a
    # moment after the call's status
    deadline = time.monotonic() + 10
    while True:
        log = running.container.logs(stdout=False, stderr=True).decode()
        if "LookupError" in log or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "LookupError: no entry 7.0 in the table" in log

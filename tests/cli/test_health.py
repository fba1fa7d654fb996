"""`modelwire health ADDRESS`: the status on stdout, exit 0 only for SERVING; a failed check is
one `error:` line in the client side's one form (hosting.remote.rpc_error)."""

from __future__ import annotations

import socket

import pytest

from tests.cli.conftest import usage


def test_serving_exits_0_and_prints_it(cli, echo_address):
    result = cli("health", echo_address)
    assert (result.exit_code, result.stdout, result.stderr) == (0, "SERVING\n", "")
    service = cli("health", echo_address, "--service", "modelwire.models.echo.v1.EchoService")
    assert (service.exit_code, service.stdout) == (0, "SERVING\n")


def test_an_unknown_service_is_one_error_line(cli, echo_address):
    result = cli("health", echo_address, "--service", "nope.v1.Nope")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: {echo_address} Check: NOT_FOUND (no service 'nope.v1.Nope' there; leave out "
        "--service for the whole server)\n",
    )


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_listening_is_one_error_line_with_the_status(cli, closed_port):
    result = cli("health", f"127.0.0.1:{closed_port}", "--timeout", "2")
    assert (result.exit_code, result.stdout) == (1, "")
    # the details are grpc's own words for the refused connection
    assert result.stderr.startswith(f"error: 127.0.0.1:{closed_port} Check: UNAVAILABLE: ")
    assert len(result.stderr.splitlines()) == 1


def test_a_malformed_address_is_a_usage_error(cli):
    result = cli("health", "50051")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == usage(
        "health",
        "ADDRESS",
        "Invalid value for 'ADDRESS': '50051': expected HOST:PORT, e.g. localhost:50051",
    )

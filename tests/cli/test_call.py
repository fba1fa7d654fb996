"""`modelwire call ADDRESS METHOD [JSON]`: JSON in, JSON out, schema by reflection."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from modelwire.errors import ServiceError
from modelwire.runtime.client import connect
from tests.cli.conftest import usage
from tests.servers import closed_port, silent_listener


def _call_usage(message: str) -> str:
    return usage("call", "ADDRESS METHOD [JSON]", message)


@pytest.mark.parametrize("method", ["add", "Add"])
def test_call_prints_the_reply_as_json(cli, echo_address, method):
    result = cli("call", echo_address, method, '{"a": 1.5, "b": 2}')
    assert (result.exit_code, result.stdout, result.stderr) == (0, '{\n  "value": 3.5\n}\n', "")


def test_call_with_nested_fields_and_enums(cli, echo_address):
    request = {"name": "a", "scores": [1, 2.5], "color": "COLOR_GREEN", "where": {"x": 1, "y": 2}}
    result = cli("call", echo_address, "echo_record", json.dumps(request))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "name": "a",
        "scores": [1.0, 2.5],
        "color": "COLOR_GREEN",
        "where": {"x": 1.0, "y": 2.0},
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([], "Missing argument 'ADDRESS'.", id="no-address"),
        pytest.param(
            ["", "add"],
            "Invalid value for 'ADDRESS': is empty; write HOST:PORT",
            id="empty-address",
        ),
        pytest.param(["{address}"], "Missing argument 'METHOD'.", id="no-method"),
        pytest.param(
            ["{address}", "add", "{not json"],
            "Invalid value for 'JSON': not JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
            id="not-json",
        ),
        pytest.param(
            ["{address}", "add", "[1, 2]"],
            "Invalid value for 'JSON': expected a JSON object of the request's fields, got list",
            id="json-not-an-object",
        ),
        pytest.param(
            ["{address}", "subtract", "{}"],
            "Invalid value for 'METHOD': modelwire.models.echo.v1.EchoService has no method "
            "'subtract'; it has EchoRecord, EchoTensor, Add, Fail, Reject",
            id="unknown-method",
        ),
        pytest.param(
            ["{address}", "add", '{"a": "x"}'],
            "Invalid value for 'JSON': Failed to parse a field: Couldn't parse float: x at "
            "AddRequest.a.",
            id="wrong-field-type",
        ),
        pytest.param(
            ["{address}", "add", "{}", "--timeout", "0"],
            "Invalid value for '--timeout': 0.0 is not in the range x>0.",
            id="zero-timeout",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(cli, echo_address, args, message):
    result = cli("call", *(echo_address if a == "{address}" else a for a in args))
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", _call_usage(message))


@pytest.mark.parametrize(
    ("field", "hint"),
    [
        pytest.param("c", "", id="no-close-name"),
        pytest.param("aa", "; did you mean 'a'?", id="near-miss"),
    ],
)
def test_unknown_field_is_a_usage_error_naming_the_fields(cli, echo_address, field, hint):
    result = cli("call", echo_address, "add", json.dumps({field: 1}))
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        _call_usage(
            f"Invalid value for 'JSON': Add takes no field {field!r}{hint} (its fields: a, b)"
        ),
    )


def test_a_nested_unknown_field_is_a_usage_error_too(cli, echo_address):
    request = {"name": "a", "where": {"x": 1, "z": 2}}
    result = cli("call", echo_address, "echo_record", json.dumps(request))
    assert result.exit_code == 2
    assert 'has no field named "z"' in result.stderr


def test_without_json_every_field_has_its_default_and_dash_reads_stdin(cli, echo_address):
    empty = cli("call", echo_address, "add")
    assert (empty.exit_code, empty.stdout) == (0, '{\n  "value": 0.0\n}\n'), empty.stderr
    piped = cli("call", echo_address, "add", "-", input='{"a": 1, "b": 2}')
    assert (piped.exit_code, piped.stdout) == (0, '{\n  "value": 3.0\n}\n'), piped.stderr


# a model's error, as both faces report it: (method, rpc, status, details)
SERVER_ERRORS = pytest.mark.parametrize(
    ("method", "rpc", "status", "details"),
    [
        pytest.param(
            "fail",
            "Fail",
            "INTERNAL",
            "fail: the model raised RuntimeError; the traceback is in the server's log",
            id="internal",
        ),
        pytest.param(
            "reject",
            "Reject",
            "INVALID_ARGUMENT",
            "reject: the model rejected the request: ValueError: x must be positive, got 0.0",
            id="invalid-argument",
        ),
    ],
)


@SERVER_ERRORS
def test_server_error_is_one_error_line(cli, echo_address, method, rpc, status, details):
    """Where, which rpc, the status and its details: the client side's one form."""
    result = cli("call", echo_address, method, '{"x": 0}')
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: {echo_address} {rpc}: {status}: {details}\n",
    )


def test_call_and_connect_render_a_failed_call_the_same(cli, echo_address):
    with connect(echo_address) as client, pytest.raises(ServiceError) as info:
        client.reject(0.0)
    result = cli("call", echo_address, "reject", '{"x": 0}')
    assert result.stderr == f"error: {info.value}\n"
    assert (info.value.target, info.value.rpc, info.value.status) == (
        echo_address,
        "Reject",
        "INVALID_ARGUMENT",
    )


def test_a_refused_connection_is_one_error_line_at_once(cli):
    port = closed_port()
    started = time.monotonic()
    result = cli("call", f"127.0.0.1:{port}", "add", "{}")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: nothing is listening on 127.0.0.1:{port}\n",
    )
    assert time.monotonic() - started < 5  # not the 10 s connect wait


def test_a_server_that_never_answers_is_reported_after_the_wait(cli):
    with silent_listener() as address:
        result = cli("call", address, "add", "{}", "--timeout", "0.5")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: cannot reach {address}: no connection within 0.5 s\n",
    )


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("50051", "expected HOST:PORT, e.g. localhost:50051"),
        ("127.0.0.1", "expected HOST:PORT, e.g. 127.0.0.1:50051"),
        (":50051", "expected HOST:PORT, e.g. localhost:50051"),
        ("http://localhost:50051",
         "expected HOST:PORT, e.g. localhost:50051 (a gRPC address has no http:// scheme)"),
        ("https://models.example.com",
         "expected HOST:PORT, e.g. models.example.com:50051 (a gRPC address has no https:// "
         "scheme)"),
        ("localhost:99999", "port '99999' is not 1-65535"),
        ("localhost :50051", "expected HOST:PORT without spaces, e.g. localhost:50051"),
        ("::1", "expected [IPV6]:PORT for an IPv6 address, e.g. [::1]:50051"),
    ],
    ids=["no-host", "no-port", "empty-host", "http", "https-no-port", "port-range", "space",
         "bare-ipv6"],
)  # fmt: skip
def test_a_malformed_address_is_a_usage_error_at_once(cli, address, problem):
    started = time.monotonic()
    result = cli("call", address, "add", "{}")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == _call_usage(f"Invalid value for 'ADDRESS': {address!r}: {problem}")
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------- --http: the HTTP face


@pytest.mark.parametrize(
    ("method", "request_json"),
    [
        pytest.param("add", '{"a": 1.5, "b": 2}', id="scalars"),
        pytest.param("Add", "{}", id="rpc-name-and-defaults"),
        pytest.param(
            "echo_record",
            json.dumps(
                {"name": "a", "scores": [1, 2.5], "color": "COLOR_GREEN", "where": {"x": 1}}
            ),
            id="nested-and-enum",
        ),
        pytest.param(
            "echo_tensor",
            json.dumps({"x": {"dtype": "DATA_TYPE_FLOAT32", "shape": [2], "data": "AACAPwAAAEA="}}),
            id="tensor",
        ),
    ],
)
def test_call_over_http_prints_what_grpc_prints(cli, echo_address, echo_url, method, request_json):
    over_grpc = cli("call", echo_address, method, request_json)
    over_http = cli("call", "--http", echo_url, method, request_json)
    assert over_grpc.exit_code == 0, over_grpc.stderr
    assert (over_http.exit_code, over_http.stdout, over_http.stderr) == (0, over_grpc.stdout, "")


def test_call_over_http_takes_the_url_without_a_scheme_and_reads_stdin(cli, echo_server):
    result = cli(
        "call", "--http", f"127.0.0.1:{echo_server.http_port}", "add", "-", input='{"a": 2}'
    )
    assert (result.exit_code, result.stdout, result.stderr) == (0, '{\n  "value": 2.0\n}\n', "")


def test_call_over_http_counts_as_a_connect_call(cli, echo_server, echo_url):
    before = echo_server.metrics.scrape().decode()
    assert cli("call", "--http", echo_url, "add", '{"a": 1}').exit_code == 0
    after = echo_server.metrics.scrape().decode()
    line = 'modelwire_requests_total{code="OK",method="add",protocol="connect"}'

    def count(text: str) -> float:
        found = [x.split()[-1] for x in text.splitlines() if x.startswith(line)]
        return float(found[0]) if found else 0.0

    assert count(after) == count(before) + 1


@SERVER_ERRORS
def test_a_server_error_over_http_is_the_same_one_line(cli, echo_url, method, rpc, status, details):
    result = cli("call", "--http", echo_url, method, '{"x": 0}')
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: {echo_url} {rpc}: {status}: {details}\n",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["subtract", "{}"],
            "Invalid value for 'METHOD': modelwire.models.echo.v1.EchoService has no method "
            "'subtract'; it has EchoRecord, EchoTensor, Add, Fail, Reject",
            id="unknown-method",
        ),
        pytest.param(
            ["add", '{"aa": 1}'],
            "Invalid value for 'JSON': Add takes no field 'aa'; did you mean 'a'? (its fields: "
            "a, b)",
            id="unknown-field",
        ),
        pytest.param(
            ["add", '{"a": "x"}'],
            "Invalid value for 'JSON': Failed to parse a field: Couldn't parse float: x at "
            "AddRequest.a.",
            id="wrong-field-type",
        ),
    ],
)
def test_bad_arguments_over_http_are_the_same_usage_errors(cli, echo_url, args, message):
    result = cli("call", "--http", echo_url, *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", _call_usage(message))


def test_a_url_that_is_not_http_is_a_usage_error(cli):
    result = cli("call", "--http", "ftp://127.0.0.1:21", "add")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        _call_usage(
            "Invalid value for 'ADDRESS': 'ftp://127.0.0.1:21' is not an HTTP address; write "
            "http://HOST:PORT, e.g. http://localhost:8080"
        ),
    )


def test_an_unreachable_url_is_one_error_line(cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = cli("call", "--http", f"http://127.0.0.1:{port}", "add", "{}")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: cannot reach http://127.0.0.1:{port}: [Errno 111] Connection refused\n",
    )


def test_a_url_that_is_not_a_modelwire_face_says_so(cli):
    """An HTTP server that is not a modelwire face (here: the standard library's)."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = cli("call", "--http", url, "add", "{}")
    finally:
        server.shutdown()
        server.server_close()
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: {url} GET /model/info answered 404: not the HTTP face of a modelwire service "
        "(its gRPC address works with modelwire call without --http)\n",
    )

"""`modelwire serve`: bad arguments are usage errors (exit 2); a bundle that cannot be served
or a port that cannot be bound is one `error:` line (exit 1). Serving itself runs as a real
subprocess in tests/runtime."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys

import pytest

from tests.cli.conftest import usage


def _serve_usage(message: str) -> str:
    return usage("serve", "BUNDLE", message)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param([], {}, "Missing argument 'BUNDLE'.", id="no-bundle"),
        pytest.param(
            ["b", "--port", "70000"],
            {},
            "Invalid value for '--port': 70000 is not in the range 0<=x<=65535.",
            id="port-too-large",
        ),
        pytest.param(
            ["b", "--port", "abc"],
            {},
            "Invalid value for '--port': 'abc' is not a valid integer range.",
            id="port-not-a-number",
        ),
        pytest.param(
            ["b"],
            {"MODELWIRE_PORT": "-1"},
            "Invalid value for '--port' (env var: 'MODELWIRE_PORT'): -1 is not in the range "
            "0<=x<=65535.",
            id="port-from-env",
        ),
        pytest.param(
            ["b"],
            {"MODELWIRE_WORKERS": "0"},
            "Invalid value for '--workers' (env var: 'MODELWIRE_WORKERS'): 0 is not in the range "
            "1<=x<=256.",
            id="workers-from-env",
        ),
        pytest.param(
            ["b", "--workers", "0"],
            {},
            "Invalid value for '--workers': 0 is not in the range 1<=x<=256.",
            id="no-workers",
        ),
        pytest.param(
            ["b", "--server", "threads"],
            {},
            "Invalid value for '--server': 'threads' is not one of 'sync', 'aio'.",
            id="unknown-server",
        ),
        pytest.param(
            ["b", "--max-message-mb", "0"],
            {},
            "Invalid value for '--max-message-mb': 0 is not in the range 1<=x<=2047.",
            id="max-message-zero",
        ),
        pytest.param(
            ["b", "--max-message-mb", "2048"],
            {},
            "Invalid value for '--max-message-mb': 2048 is not in the range 1<=x<=2047.",
            id="max-message-2gib",
        ),
        pytest.param(
            ["b", "--metrics-port", "65536"],
            {},
            "Invalid value for '--metrics-port': 65536 is not in the range 0<=x<=65535.",
            id="metrics-port-too-large",
        ),
        pytest.param(
            ["b", "--grace", "-1"],
            {},
            "Invalid value for '--grace': -1.0 is not in the range x>=0.",
            id="negative-grace",
        ),
        pytest.param(
            ["b", "--log-format", "xml"],
            {},
            "Invalid value for '--log-format': 'xml' is not one of 'json', 'console'.",
            id="unknown-log-format",
        ),
        pytest.param(
            ["b", "--bogus"],
            {},
            "No such option '--bogus'. Did you mean '--host'?",
            id="unknown-option",
        ),
    ],
)
def test_bad_arguments_are_usage_errors(cli, args, env, message):
    result = cli("serve", *args, env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", _serve_usage(message))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_missing_bundle_is_one_error_line(cli, tmp_path, workers):
    missing = tmp_path / "nope"
    result = cli("serve", str(missing), "--port", "0", "--workers", workers)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: bundle {missing}: no such file or directory\n",
    )


def test_directory_that_is_not_a_bundle_is_one_error_line(cli, tmp_path):
    result = cli("serve", str(tmp_path), "--port", "0")
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: bundle {tmp_path}: not a bundle: modelwire.json is missing "
        "(write one with modelwire.dump)\n",
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_tampered_bundle_is_one_error_line(cli, bundles, tmp_path, workers):
    tampered = tmp_path / "tampered"
    shutil.copytree(bundles["echo"], tampered)
    with (tampered / "model.pkl").open("ab") as f:
        f.write(b"\0")
    result = cli("serve", str(tampered), "--port", "0", "--workers", workers)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: bundle {tampered}: file model.pkl does not match its sha256 in modelwire.json; "
        "the bundle was modified after it was written\n",
    )


@pytest.mark.parametrize("args", [["--workers", "1"], ["--workers", "3"], ["--server", "aio"]])
def test_a_pickle_that_cannot_load_is_one_error_line_from_every_worker_count(
    bundles, tmp_path, args
):
    """Workers are subprocesses: their failure reaches the supervisor, not a traceback."""
    broken = tmp_path / "broken"
    shutil.copytree(bundles["echo"], broken)
    (broken / "model.pkl").write_bytes(b"garbage")
    manifest = json.loads((broken / "modelwire.json").read_text())
    manifest["files"]["model.pkl"] = hashlib.sha256(b"garbage").hexdigest()
    (broken / "modelwire.json").write_text(json.dumps(manifest))
    proc = subprocess.run(
        [sys.executable, "-m", "modelwire", "serve", str(broken), "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        1,
        "",
        f"error: bundle {broken}: model.pkl cannot be unpickled "
        "(UnpicklingError('pickle data was truncated'))\n",
    )


@pytest.fixture
def busy_port():
    """A port some other program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="sync"),
        pytest.param(["--server", "aio"], id="aio"),
    ],
)
def test_port_in_use_is_one_error_line(cli, bundles, busy_port, args):
    result = cli("serve", str(bundles["slow"]), "--port", str(busy_port), *args)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: port={busy_port}: cannot listen on 127.0.0.1:{busy_port} "
        "(Address already in use); is another server using it?\n",
    )


def test_an_unresolvable_host_is_one_error_line(cli, bundles):
    result = cli("serve", str(bundles["slow"]), "--host", "nosuch.invalid", "--port", "0")
    assert (result.exit_code, result.stdout) == (1, "")
    # the resolver's reason varies (no such name, or no resolver reachable)
    assert result.stderr.startswith("error: host='nosuch.invalid': cannot resolve it (")
    assert result.stderr.endswith("); use a name or an IP address of this machine\n")
    assert len(result.stderr.splitlines()) == 1


def test_another_machines_address_is_one_error_line(cli, bundles):
    # 192.0.2.1 is in TEST-NET-1: never an address of this machine
    result = cli("serve", str(bundles["slow"]), "--host", "192.0.2.1", "--port", "0")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "error: host='192.0.2.1': not an address of this machine (Cannot assign requested "
        "address); use 127.0.0.1, 0.0.0.0 for every interface, or one of its own addresses\n",
    )


def test_port_in_use_with_workers_is_one_error_line(cli, bundles, busy_port):
    result = cli("serve", str(bundles["slow"]), "--port", str(busy_port), "--workers", "2")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: port={busy_port}: cannot bind 127.0.0.1:{busy_port} (Address already in use)\n",
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="sync"),
        pytest.param(["--server", "aio"], id="aio"),
        pytest.param(["--workers", "2"], id="workers"),
    ],
)
def test_metrics_port_in_use_is_one_error_line(cli, bundles, busy_port, args):
    result = cli(
        "serve",
        str(bundles["slow"]),
        "--port",
        "0",
        "--metrics-port",
        str(busy_port),
        "--log-level",
        "error",
        *args,
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: metrics_port={busy_port}: cannot serve metrics on 127.0.0.1:{busy_port} "
        "(Address already in use)\n",
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_metrics_port_equal_to_the_port_is_one_error_line(cli, bundles, workers):
    """Said as it is, not as 'cannot serve metrics (Address already in use)'."""
    result = cli(
        "serve", str(bundles["slow"]), "--port", "47219", "--metrics-port", "47219",
        "--workers", workers,
    )  # fmt: skip
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "error: metrics_port=47219: is the gRPC port too; choose another one\n",
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        pytest.param([], "cannot listen on", id="sync"),
        pytest.param(["--server", "aio"], "cannot listen on", id="aio"),
        pytest.param(["--workers", "2"], "cannot bind", id="workers"),
    ],
)
def test_http_port_in_use_is_one_error_line(cli, bundles, busy_port, args, reason):
    result = cli("serve", str(bundles["slow"]), "--port", "0", "--http-port", str(busy_port), *args)
    hint = "; is another server using it?" if reason == "cannot listen on" else ""
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: http_port={busy_port}: {reason} 127.0.0.1:{busy_port} "
        f"(Address already in use){hint}\n",
    )


def test_no_http_serves_even_where_the_http_port_is_taken(serve_process, bundles, busy_port):
    served = serve_process(bundles["slow"], "--http-port", str(busy_port), "--no-http")
    assert served.http_address is None
    assert served.terminate() == 0, served.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--port", "47219", "--http-port", "47219"],
            "http_port=47219: is the gRPC port too; choose another one",
            id="http-is-grpc",
        ),
        pytest.param(
            ["--port", "0", "--http-port", "47219", "--metrics-port", "47219"],
            "metrics_port=47219: is the HTTP port too; choose another one",
            id="metrics-is-http",
        ),
    ],
)
def test_one_port_for_two_faces_is_one_error_line(cli, bundles, args, message):
    result = cli("serve", str(bundles["slow"]), *args)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {message}\n")

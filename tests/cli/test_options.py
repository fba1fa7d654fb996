"""Options shared by several commands are one declaration each (cli/options.py): the same
flags, type, default, environment variable and help wherever they appear, and each command
reads the variables of its options."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import yaml

from modelwire.cli import main
from modelwire.cli.options import SHARED, SharedOption
from modelwire.runtime.client import connect
from tests.servers import ModelwireProcess

SHARED_FLAGS = {flag for spec in SHARED for flag in spec.flags}


def _commands(group: click.Group = main, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} ")
        else:
            yield path, command


def _shared_options(command: click.Command) -> dict[str, click.Option]:
    """The options of `command` that have a shared option's flag, by concept."""
    found: dict[str, click.Option] = {}
    for param in command.params:
        if isinstance(param, click.Option) and SHARED_FLAGS & {*param.opts, *param.secondary_opts}:
            assert isinstance(param, SharedOption), (
                f"{command.name} declares {param.opts} itself; use cli/options.py"
            )
            found[param.concept] = param
    return found


def test_every_option_with_a_shared_flag_is_its_shared_declaration():
    specs = {spec.concept: spec for spec in SHARED}
    seen = 0
    for path, command in _commands():
        for concept, option in _shared_options(command).items():
            expected = specs[concept].option().to_info_dict()
            assert option.to_info_dict() == expected, f"{path}: {option.opts}"
            seen += 1
    assert seen >= 20  # the walk found the commands' options at all


def test_each_command_has_the_shared_options_it_should():
    logging = {"log-level", "log-format"}
    supervision = {"restart-backoff", "max-restarts", "liveness-timeout"}
    serving = {
        "host",
        "port",
        "http-port",
        "no-http",
        "max-message-mb",
        "metrics-port",
        "grace",
        *supervision,
        *logging,
    }
    tls = {"tls-cert", "tls-key", "tls-client-ca"}
    found = {path: set(_shared_options(command)) for path, command in _commands()}
    assert {path: concepts for path, concepts in found.items() if concepts} == {
        "build": logging,
        "catalog serve": {"host", "catalog-port", "grace", *tls, *logging},
        "dump": logging,
        "export": {"port", "http-port"},
        "run": {*serving, *tls, "startup-timeout"},
        "serve": {*serving, *tls},
        "validate": logging,
    }


def _help_lines(command: str, flag: str) -> list[str]:
    """The help text of FLAG in `modelwire COMMAND --help`, as click renders it."""
    cmd: click.Command = main
    ctx = click.Context(main, info_name="modelwire")
    for name in command.split():
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
        ctx = click.Context(cmd, info_name=name, parent=ctx)
    option = next(p for p in cmd.params if flag in getattr(p, "opts", ()))
    record = option.get_help_record(ctx)
    assert record is not None
    return list(record)


@pytest.mark.parametrize(
    ("flag", "commands"),
    [
        ("--host", ["serve", "run", "catalog serve"]),
        ("--port", ["serve", "run", "export"]),
        ("--http-port", ["serve", "run", "export"]),
        ("--no-http", ["serve", "run"]),
        ("--max-message-mb", ["serve", "run"]),
        ("--metrics-port", ["serve", "run"]),
        ("--grace", ["serve", "run", "catalog serve"]),
        ("--restart-backoff", ["serve", "run"]),
        ("--max-restarts", ["serve", "run"]),
        ("--liveness-timeout", ["serve", "run"]),
        ("--log-level", ["serve", "run", "catalog serve", "dump", "build", "validate"]),
        ("--log-format", ["serve", "run", "catalog serve", "dump", "build", "validate"]),
        ("--tls-cert", ["serve", "run", "catalog serve"]),
        ("--tls-key", ["serve", "run", "catalog serve"]),
        ("--tls-client-ca", ["serve", "run", "catalog serve"]),
    ],
)
def test_help_says_the_same_with_the_env_var_everywhere(flag, commands):
    helps = {command: _help_lines(command, flag) for command in commands}
    first = helps[commands[0]]
    assert all(h == first for h in helps.values()), helps
    assert "[env var: MODELWIRE_" in first[1]


def test_help_of_the_ports_names_their_variables():
    assert _help_lines("serve", "--port") == [
        "--port INTEGER RANGE",
        "The gRPC port to bind or publish; 0 picks a free one when binding.  "
        "[env var: MODELWIRE_PORT; default: 50051; 0<=x<=65535]",
    ]
    assert _help_lines("catalog serve", "--port") == [
        "--port INTEGER RANGE",
        "The catalog's gRPC port; 0 picks a free one.  "
        "[env var: MODELWIRE_CATALOG_PORT; default: 50060; 0<=x<=65535]",
    ]
    assert _help_lines("serve", "--http-port") == [
        "--http-port INTEGER RANGE",
        "The HTTP port (Connect, the Acumos REST contract, /docs) to bind or publish; 0 "
        "picks a free one when binding.  [env var: MODELWIRE_HTTP_PORT; default: 8080; "
        "0<=x<=65535]",
    ]
    assert _help_lines("run", "--no-http") == [
        "--no-http",
        "Serve gRPC only: no HTTP face (whatever --http-port says).  [env var: MODELWIRE_NO_HTTP]",
    ]
    assert _help_lines("run", "--startup-timeout")[1].endswith(
        "[env var: MODELWIRE_STARTUP_TIMEOUT; default: 120.0; x>0]"
    )


# ---------------------------------------------------------------- each command reads them


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _in_use(port: int) -> str:
    return (
        f"error: port={port}: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "is another server using it?\n"
    )


@pytest.fixture
def adder(bundles: dict[str, Path], tmp_path: Path) -> Path:
    """A one-step blueprint over the echo bundle's `add`."""
    path = tmp_path / "adder.yaml"
    path.write_text(
        "name: adder\n"
        f"models:\n  echo: {{bundle: {bundles['echo']}}}\n"
        "methods:\n  add:\n    steps:\n      sum: {call: echo.add, with: $input}\n"
        "    output: sum\n"
    )
    return path


def test_serve_reads_its_port_and_host_from_the_environment(cli, bundles, busy_port):
    result = cli("serve", str(bundles["slow"]), env={"MODELWIRE_PORT": str(busy_port)})
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", _in_use(busy_port))
    result = cli("serve", str(bundles["slow"]), "--port", "0", env={"MODELWIRE_HOST": "192.0.2.1"})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: host='192.0.2.1': not an address of this machine")


def _http_in_use(port: int) -> str:
    return _in_use(port).replace("error: port=", "error: http_port=")


@pytest.mark.parametrize("command", ["serve", "run"])
def test_serve_and_run_read_their_http_port_from_the_environment(
    cli, bundles, adder, busy_port, command
):
    target = str(bundles["slow"]) if command == "serve" else str(adder)
    env = {"MODELWIRE_HTTP_PORT": str(busy_port)}
    result = cli(command, target, "--port", "0", "--log-format", "json", env=env)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", _http_in_use(busy_port))
    result = cli(command, target, "--port", "0", env={**env, "MODELWIRE_HTTP_PORT": "x"})
    assert result.exit_code == 2
    assert "Invalid value for '--http-port' (env var: 'MODELWIRE_HTTP_PORT'): 'x'" in (
        result.stderr
    )


@pytest.mark.timeout(60)
def test_no_http_is_read_from_the_environment(bundles):
    env = {**os.environ, "MODELWIRE_NO_HTTP": "1"}
    served = ModelwireProcess(
        "serve",
        str(bundles["slow"]),
        "--port",
        "0",
        "--log-format",
        "json",
        listening="modelwire runtime listening on",
        what="serve",
        timeout=30,
        env=env,
    )
    try:
        assert served.http_address is None
        assert served.terminate() == 0, served.stderr
        assert served.stdout_lines == [f"modelwire runtime listening on {served.address}\n"]
    finally:
        served.kill()


def test_run_reads_its_port_from_the_environment(cli, adder, busy_port):
    """It did not before: `run --port` had no environment variable."""
    result = cli("run", str(adder), "--log-format", "json", env={"MODELWIRE_PORT": str(busy_port)})
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", _in_use(busy_port))


@pytest.mark.timeout(90)
def test_run_serves_on_the_env_ports_and_its_models_do_not_take_the_metrics_port(adder):
    """The models run as `modelwire serve` children with run's environment: the solution's
    MODELWIRE_METRICS_PORT must not reach them, or they would bind it first."""
    port, metrics = _free_port(), _free_port()
    env = {**os.environ, "MODELWIRE_PORT": str(port), "MODELWIRE_METRICS_PORT": str(metrics)}
    broker = ModelwireProcess(
        "run",
        str(adder),
        "--log-format",
        "json",
        listening="modelwire broker listening on",
        what="run",
        timeout=60,
        env=env,
    )
    try:
        assert broker.address == f"127.0.0.1:{port}", broker.stderr
        with connect(broker.address, timeout=10) as solution:
            assert solution.add(a=1.5, b=2.0) == 3.5
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as r:
            scraped = r.read().decode()
        assert "modelwire_step_requests_total{" in scraped, scraped
        assert broker.terminate() == 0, broker.stderr
    finally:
        broker.kill()


@pytest.mark.timeout(60)
def test_catalog_serve_reads_its_own_port_variable_not_the_models(tmp_path, busy_port):
    """MODELWIRE_PORT (a model's, in the same environment) does not move the catalog."""
    env = {**os.environ, "MODELWIRE_PORT": str(busy_port), "MODELWIRE_CATALOG_PORT": "0"}
    catalog = ModelwireProcess(
        "catalog",
        "serve",
        "--data",
        str(tmp_path / "data"),
        "--init",
        "--log-format",
        "json",
        listening="modelwire catalog listening on",
        what="catalog serve",
        timeout=30,
        serving=True,
        env=env,
    )
    try:
        host, _, port = catalog.address.rpartition(":")
        assert host == "127.0.0.1"
        assert int(port) not in (0, busy_port, 50060)
    finally:
        catalog.kill()


def test_catalog_serve_reads_its_port_and_grace_from_the_environment(cli, tmp_path, busy_port):
    result = cli(
        "catalog",
        "serve",
        "--data",
        str(tmp_path / "data"),
        "--init",
        env={"MODELWIRE_CATALOG_PORT": str(busy_port)},
    )
    assert (result.exit_code, result.stdout) == (1, ""), result.stderr
    assert result.stderr == _in_use(busy_port)
    result = cli("catalog", "serve", "--data", str(tmp_path), env={"MODELWIRE_GRACE": "-1"})
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "Usage: modelwire catalog serve [OPTIONS]\n"
        "Try 'modelwire catalog serve --help' for help.\n\n"
        "Error: Invalid value for '--grace' (env var: 'MODELWIRE_GRACE'): -1.0 is not in the "
        "range x>=0.\n",
    )


def test_export_reads_its_ports_from_the_environment(cli, adder, tmp_path):
    out = tmp_path / "k8s"
    env = {"MODELWIRE_PORT": "50999", "MODELWIRE_HTTP_PORT": "8999"}
    result = cli("export", str(adder), "--k8s", str(out), env=env)
    assert result.exit_code == 0, result.stderr
    service = [
        doc
        for doc in yaml.safe_load_all((out / "adder.yaml").read_text())
        if doc["kind"] == "Service"
    ]
    assert [p["port"] for p in service[0]["spec"]["ports"]] == [50999, 8999]


@pytest.mark.parametrize("flag", ["--port", "--http-port"])
def test_export_refuses_port_0(cli, adder, tmp_path, flag):
    result = cli("export", str(adder), "--k8s", str(tmp_path / "k8s"), flag, "0")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        f"Error: Invalid value for '{flag}': an export publishes the solution on a fixed port; "
        "0 (a free one) is for binding\n"
    )


def test_export_refuses_one_port_for_both_faces(cli, adder, tmp_path):
    args = ["--port", "9000", "--http-port", "9000"]
    result = cli("export", str(adder), "--k8s", str(tmp_path / "k8s"), *args)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        "Error: Invalid value for '--http-port': 9000 is --port too; the two faces need a port "
        "each\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--port", "47219", "--http-port", "47219"],
            "http_port=47219: is the gRPC port too; choose another one",
            id="http-is-grpc",
        ),
        pytest.param(
            ["--port", "47219", "--metrics-port", "47219"],
            "metrics_port=47219: is the gRPC port too; choose another one",
            id="metrics-is-grpc",
        ),
    ],
)
def test_run_refuses_one_port_for_two_faces_before_starting_anything(cli, adder, args, message):
    """Refused from the settings alone, before any model starts."""
    result = cli("run", str(adder), *args)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {message}\n")

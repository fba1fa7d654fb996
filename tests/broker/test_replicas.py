"""Replicas that share the load: `replicas: N` in a blueprint and `run --replicas MODEL=N`
start N supervised processes of a model, the broker sends each call to the next SERVING
one (round robin over calls, not connections), counts calls per replica, and keeps the
model serving while any replica does; an `address: dns:///NAME:PORT` model has one
replica per address NAME resolves to."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.request
import uuid

import pytest

from modelwire.broker.endpoints import Endpoints
from modelwire.broker.loader import parse_blueprint
from modelwire.broker.replicas import plan_replicas
from modelwire.errors import ConfigError
from modelwire.hosting.remote import health_status
from modelwire.runtime.client import connect
from tests.broker import test_run
from tests.broker.helpers import (
    BrokerProcess,
    HandlerServer,
    InProcessSolution,
    RawClient,
    children_of,
    write_blueprint,
)
from tests.fixtures.models import sleeper
from tests.runtime.prometheus import parse
from tests.runtime.serving import json_logs, wait_for

pytestmark = pytest.mark.timeout(120)

# test_run's photo blueprint, its detector at 3 replicas
PHOTO = test_run.PHOTO.replace(
    "{bundle: ../_bundles/detector}", "{bundle: ../_bundles/detector, replicas: 3}"
)
assert "replicas: 3" in PHOTO
IMAGE = test_run.IMAGE


@pytest.fixture
def blueprint(bundles_root):
    folder = bundles_root / f"replicas-{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    path = folder / "photo.yaml"
    path.write_text(PHOTO)
    return path


def replica_calls(metrics_port: int, model: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
        scrape = parse(r.read().decode())
    out: dict[str, float] = {}
    for labels, n in scrape.series("modelwire_replica_requests_total").items():
        d = dict(labels)
        if d["model"] == model:
            out[d["replica"]] = out.get(d["replica"], 0) + n
    return out


def cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode(errors="replace")


def metrics_port_of(broker: BrokerProcess) -> int:
    wait_for(lambda: "metrics_port" in broker.stderr, 10, "the broker's log of its metrics port")
    [port] = [r["metrics_port"] for r in json_logs(broker.stderr) if "metrics_port" in r]
    return int(port)


def test_run_starts_every_replica_and_balances_calls_over_them(blueprint, servers):
    broker = servers(BrokerProcess(blueprint, "--metrics-port", "0"))
    assert len(children_of(broker.proc.pid)) == 4, broker.stderr  # 3 faces, 1 advisor
    client = connect(broker.address)
    try:
        for _ in range(30):
            assert client.advise(IMAGE) == ("2 faces, 2 eyes", 4)
    finally:
        client.close()
    # two calls of faces per call of the solution, one after the other to each replica
    assert replica_calls(metrics_port_of(broker), "faces") == {"1": 20, "2": 20, "3": 20}
    assert replica_calls(metrics_port_of(broker), "advisor") == {"1": 30}


def test_the_cli_flag_overrides_the_blueprint(blueprint, servers):
    broker = servers(
        BrokerProcess(
            blueprint, "--metrics-port", "0", "--replicas", "faces=2", "--replicas", "advisor=2"
        )
    )
    assert len(children_of(broker.proc.pid)) == 4, broker.stderr
    client = connect(broker.address)
    try:
        for _ in range(10):
            client.advise(IMAGE)
    finally:
        client.close()
    port = metrics_port_of(broker)
    assert replica_calls(port, "faces") == {"1": 10, "2": 10}
    assert replica_calls(port, "advisor") == {"1": 5, "2": 5}


def test_a_killed_replica_gets_no_calls_and_the_model_keeps_serving(blueprint, servers):
    broker = servers(BrokerProcess(blueprint, "--metrics-port", "0", "--restart-backoff", "5"))
    client = connect(broker.address)
    try:
        client.advise(IMAGE)
        faces = [p for p in children_of(broker.proc.pid) if "detector" in cmdline(p)]
        assert len(faces) == 3
        os.kill(faces[1], signal.SIGKILL)
        wait_for(lambda: "was killed by SIGKILL" in broker.stderr, 10, "the kill to be seen")
        before = replica_calls(metrics_port_of(broker), "faces")
        # while it restarts, every call succeeds on the two others, and the solution serves
        for _ in range(10):
            assert client.advise(IMAGE) == ("2 faces, 2 eyes", 4)
        assert health_status(broker.address) == "SERVING"
        after = replica_calls(metrics_port_of(broker), "faces")
        new = {r: after.get(r, 0) - before.get(r, 0) for r in ("1", "2", "3")}
        [killed] = [r for r, n in new.items() if n == 0]
        assert sorted(new.values()) == [0, 10, 10]
        restarted = f"model faces#{killed} serving again"
        wait_for(lambda: restarted in broker.stderr, 60, "the replica to come back")
        for _ in range(6):
            client.advise(IMAGE)
        assert replica_calls(metrics_port_of(broker), "faces").get(killed, 0) > after.get(killed, 0)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        pytest.param(
            "face=2",
            "error: --replicas='face=2': the blueprint has no model 'face'; did you mean "
            "'faces'? (it has 'faces', 'advisor')",
            id="unknown-model",
        ),
    ],
)
def test_a_bad_replicas_flag_names_the_problem_and_starts_nothing(blueprint, cli, flag, message):
    result = cli("run", str(blueprint), "--port", "0", "--replicas", flag)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == message


@pytest.mark.parametrize(
    ("flag", "problem"),
    [
        pytest.param(
            "faces=0",
            "'faces=0': the number of replicas must be a whole number from 1, not '0'",
            id="zero",
        ),
        pytest.param("faces", "'faces' is not MODEL=N, e.g. classifier=3", id="no-count"),
        pytest.param(
            "faces=x",
            "'faces=x': the number of replicas must be a whole number from 1, not 'x'",
            id="not-a-number",
        ),
    ],
)
def test_a_malformed_replicas_flag_is_a_usage_error(blueprint, cli, flag, problem):
    result = cli("run", str(blueprint), "--replicas", flag)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--replicas': {problem}" in result.output


def test_only_models_the_runner_starts_take_a_replicas_flag(tmp_path):
    bp, diags = parse_blueprint(
        "name: x\nmodels:\n  a: {address: 'localhost:1'}\n  b: {bundle: b}\n"
        "methods:\n  m:\n    steps:\n      s: {call: a.f, with: $input}\n    output: s\n",
        base=tmp_path,
    )
    assert bp is not None and not diags
    with pytest.raises(ConfigError) as exc:
        plan_replicas(bp, {"b": tmp_path / "b"}, {"a": 2})
    assert str(exc.value) == (
        "--replicas='a=2': model 'a' runs at an address: only models modelwire starts "
        "('bundle' or 'catalog') have replicas"
    )
    assert [(r.key, r.index) for r in plan_replicas(bp, {"b": tmp_path / "b"}, {"b": 2})] == [
        ("b#1", 0),
        ("b#2", 1),
    ]
    assert [r.key for r in plan_replicas(bp, {"b": tmp_path / "b"})] == ["b"]


ONE = """
name: one
models:
  a: {address: "@a"}
methods:
  nap:
    steps:
      n: {call: a.nap, with: $input}
    output: n
"""


def nap(request, context):
    return {"seconds": request.seconds, "started": 1.0, "ended": 2.0}


def test_a_dns_address_has_one_replica_per_address_it_resolves_to(tmp_path, servers):
    a = servers(HandlerServer(sleeper.model(), "a", {"nap": nap}))
    path = write_blueprint(tmp_path / "bp.yaml", ONE, a=f"dns:///localhost:{a.port}")
    solution = servers(InProcessSolution(path))
    entry = solution.running.router.endpoints.models["a"]
    assert [e.address for e in entry.endpoints] == [f"127.0.0.1:{a.port}"]
    # a resolved replica gets calls once it answered SERVING
    wait_for(lambda: health_status(solution.address) == "SERVING", 10, "the replica to serve")
    client = servers(RawClient(solution))
    for _ in range(3):
        client("nap", seconds=0.0)
    assert solution.metrics.replica_calls("a") == {f"127.0.0.1:{a.port}": 3}


def test_a_dns_name_that_resolves_to_nothing_says_so():
    async def look() -> str:
        endpoints = Endpoints({"a": "dns:///no-such-host.invalid:50051"}, probe=False)
        await endpoints.start()
        try:
            entry = endpoints.models["a"]
            assert entry.pick() is None
            assert not entry.serving
            return entry.why_not()
        finally:
            await endpoints.close()

    why = asyncio.run(look())
    assert why.startswith("model 'a' (no-such-host.invalid does not resolve: "), why

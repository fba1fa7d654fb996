"""A live run on Docker Swarm: `modelwire export --swarm` deployed with `docker stack
deploy` as is, a model at 3 replicas whose calls the broker shares out evenly (read from
its per-replica metrics), and a replica removed under it that Swarm replaces, after which
no call fails. The engine's swarm is left as the test found it: initialised here (single
node, on loopback) and left again, or kept if it was active; the stack is removed."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docker.conftest import free_port, modelwire
from tests.runtime.prometheus import parse

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

ROWS = {
    "sepal_length": [5.1, 7.7],
    "sepal_width": [3.5, 3.0],
    "petal_length": [1.4, 6.1],
    "petal_width": [0.2, 2.3],
}
CLASSIFIER = "iris-chain-classifier"


def docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def swarm(docker_client: Any) -> Iterator[None]:
    """A swarm on this engine for the test: initialised if there is none, left after."""
    state = docker_client.info()["Swarm"]["LocalNodeState"]
    if state not in ("active", "inactive"):
        pytest.fail(f"the engine's swarm is {state!r}: neither active nor inactive")
    initialised = state == "inactive"
    if initialised:
        init = docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        assert init.returncode == 0, init.stderr
    try:
        yield
    finally:
        if initialised:
            left = docker("swarm", "leave", "--force")
            assert left.returncode == 0, left.stderr
    assert docker_client.info()["Swarm"]["LocalNodeState"] == state


@pytest.fixture
def scaled(layout: Path, bundles: dict[str, Path]) -> Iterator[Path]:
    """iris-chain with its classifier at 3 replicas."""
    original = layout / "blueprints" / "iris-chain.yaml"
    text = original.read_text().replace(
        "classifier: {bundle: ../examples/build/iris-classifier}",
        "classifier: {bundle: ../examples/build/iris-classifier, replicas: 3}",
    )
    assert "replicas: 3" in text
    path = original.with_name(f"swarm-{os.getpid()}.yaml")
    path.write_text(text)
    yield path
    path.unlink()


def tasks(stack: str, service: str) -> list[dict[str, str]]:
    """The running tasks of a stack's service: their container and address."""
    found = []
    ps = docker(
        "ps",
        "--filter",
        f"label=com.docker.swarm.service.name={stack}_{service}",
        "--format",
        "{{.ID}}",
    )
    for cid in ps.stdout.split():
        ip = docker(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", cid
        )
        found.append({"container": cid, "ip": ip.stdout.split()[0] if ip.stdout.split() else ""})
    return found


def broker_metrics(stack: str) -> dict[str, float]:
    """Calls per classifier replica, from the broker's metrics (scraped inside its task)."""
    [broker] = tasks(stack, "iris-chain")
    script = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9090/metrics').read().decode(),end='')"
    got = docker("exec", broker["container"], "python", "-c", script)
    assert got.returncode == 0, got.stderr
    out: dict[str, float] = {}
    for labels, n in parse(got.stdout).series("modelwire_replica_requests_total").items():
        d = dict(labels)
        if d["model"] == "classifier" and d["code"] == "OK":
            out[d["replica"]] = out.get(d["replica"], 0) + n
    return out


def calls(address: str, n: int) -> list[str]:
    """`n` calls of the solution; the failures' texts."""
    from modelwire.runtime.client import connect

    failures = []
    with connect(address) as solution:
        for _ in range(n):
            try:
                assert list(solution.classify(ROWS).species) == ["setosa", "virginica"]
            except Exception as exc:  # a failed call is counted, not raised
                failures.append(str(exc).splitlines()[0])
    return failures


def wait(predicate: Any, seconds: float, what: str, logs: Any = lambda: "") -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {seconds:g} s: {what}\n{logs()}"
        time.sleep(1)


def test_swarm_shares_calls_over_replicas_and_replaces_a_removed_one(
    swarm, scaled, test_images, tmp_path, docker_client
):
    built = modelwire("build", str(scaled), "--image-prefix", test_images, timeout=1500)
    assert built.returncode == 0, built.stderr
    port = free_port()
    out = tmp_path / "swarm"
    exported = modelwire(
        "export",
        str(scaled),
        "--swarm",
        str(out),
        "--port",
        str(port),
        "--http-port",
        str(free_port()),
        "--image-prefix",
        test_images,
    )
    assert exported.returncode == 0, exported.stderr
    stack = f"mwtest{os.getpid()}"
    address = f"127.0.0.1:{port}"

    def logs() -> str:
        ps = docker("stack", "ps", stack, "--no-trunc")
        broker = docker("service", "logs", "--tail", "30", f"{stack}_iris-chain")
        return ps.stdout + broker.stdout + broker.stderr

    # a local image on a single node: nothing to resolve or pull from a registry
    deployed = docker(
        "stack", "deploy", "-c", str(out / "docker-stack.yml"), "--resolve-image", "never", stack
    )
    try:
        assert deployed.returncode == 0, deployed.stderr
        wait(lambda: len(tasks(stack, "iris-chain-classifier")) == 3, 180, "3 classifiers", logs)
        from modelwire.hosting.remote import health_status

        def serving() -> bool:
            try:
                return health_status(address, timeout=2) == "SERVING"
            except Exception:
                return False

        wait(serving, 240, "the solution to serve", logs)
        # every replica has been resolved and answered SERVING
        wait(
            lambda: not calls(address, 3) and len(broker_metrics(stack)) == 3,
            60,
            "calls on all 3 replicas",
            logs,
        )
        before = broker_metrics(stack)
        assert calls(address, 60) == []
        after = broker_metrics(stack)
        shares = {r: (after[r] - before.get(r, 0)) / 60 for r in after}
        ips = {f"{t['ip']}:50051" for t in tasks(stack, "iris-chain-classifier")}
        assert set(shares) == ips, (shares, ips)
        # round robin over 3 SERVING replicas: a third each
        assert max(shares.values()) <= 0.4 and min(shares.values()) >= 0.25, shares
        print(f"share per replica: {shares}")

        victim = tasks(stack, "iris-chain-classifier")[0]
        t0 = time.monotonic()
        removed = docker("rm", "-f", victim["container"])
        assert removed.returncode == 0, removed.stderr

        def replaced() -> bool:
            now = tasks(stack, "iris-chain-classifier")
            return len(now) == 3 and victim["container"] not in {t["container"] for t in now}

        wait(replaced, 120, "Swarm to replace the removed replica", logs)
        new_ips = {f"{t['ip']}:50051" for t in tasks(stack, "iris-chain-classifier")}
        [new] = new_ips - ips

        def new_serves() -> bool:
            calls(address, 3)
            return broker_metrics(stack).get(new, 0) > 0

        wait(new_serves, 120, "the new replica to get calls", logs)
        print(f"Swarm replaced a removed replica in {time.monotonic() - t0:.1f} s")
        # after recovery: no call fails, and the new replica takes its share
        before = broker_metrics(stack)
        assert calls(address, 60) == []
        after = broker_metrics(stack)
        got = {r: after[r] - before.get(r, 0) for r in new_ips}
        assert all(n >= 15 for n in got.values()), got
    finally:
        rm = docker("stack", "rm", stack)
        assert rm.returncode == 0, rm.stderr

        def gone() -> bool:
            left = docker("ps", "-a", "-q", "--filter", f"label=com.docker.stack.namespace={stack}")
            nets = docker(
                "network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={stack}"
            )
            return not left.stdout.strip() and not nets.stdout.strip()

        wait(gone, 120, "the stack's containers and network to go")

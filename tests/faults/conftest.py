"""Fixtures of the fault-injection tests: bundles of the `fragile` fixture model, a blueprint
chaining three of them, the folder that tells a model to fail or dawdle at start, and
helpers to find a broker's or a supervisor's processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelwire.bundle import dump
from tests.broker.helpers import children_of
from tests.fixtures.models import fragile

CHAIN = """
name: fragile
models:
  a: {bundle: ../_bundles/a}
  b: {bundle: ../_bundles/b}
  c: {bundle: ../_bundles/c}
methods:
  chain:
    steps:
      one: {call: a.step, with: $input}
      two: {call: b.step, with: one}
      three: {call: c.step, with: two}
    output: three
  solo:
    steps:
      only: {call: a.step, with: $input}
    output: only
"""
SERVICE = "modelwire.solutions.fragile.v1.FragileService"
CHAIN_HEALTH = f"{SERVICE}/Chain"
SOLO_HEALTH = f"{SERVICE}/Solo"


def f(x: int) -> int:
    return 3 * x + 1


def request(caller: int, seq: int) -> int:
    """A number no other call sends."""
    return caller * 1_000_000_000 + seq


def chain_call(caller: int, seq: int) -> tuple[dict[str, int], tuple[int, int]]:
    x = request(caller, seq)
    return {"x": x, "steps": 0}, (f(f(f(x))), 3)


def step_call(caller: int, seq: int) -> tuple[dict[str, int], tuple[int, int]]:
    x = request(caller, seq)
    return {"x": x, "steps": 0}, (f(x), 1)


@pytest.fixture(scope="session")
def fragile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`_bundles/{a,b,c,w}`: bundles of the fragile model; `run/chain.yaml` chains a, b, c."""
    root = tmp_path_factory.mktemp("faults")
    for name in ("a", "b", "c", "w"):
        dump(fragile.model(), name, root / "_bundles" / name)
    (root / "run").mkdir()
    (root / "run" / "chain.yaml").write_text(CHAIN)
    return root


@pytest.fixture
def control(tmp_path: Path) -> Path:
    """The folder FRAGILE_CONTROL names: `<bundle>.crash`, `<bundle>.slow` in it."""
    folder = tmp_path / "control"
    folder.mkdir()
    return folder


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def model_pids(broker_pid: int) -> dict[str, int]:
    """The live `modelwire serve` children of a broker, by bundle folder name."""
    found = {}
    for pid in children_of(broker_pid):
        for part in cmdline(pid).split():
            if os.sep + "_bundles" + os.sep in part:
                found[Path(part).name] = pid
    return found

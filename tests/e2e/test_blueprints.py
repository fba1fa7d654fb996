"""Every blueprint in blueprints/: its bundles come from examples/build.py, it type-checks,
it runs, answers, and SIGTERM stops it and every model process it started; fused
(`run --fuse`) it starts no model process and answers the same."""

from __future__ import annotations

import enum
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from skimage import data

import modelwire
from tests.e2e.conftest import BLUEPRINTS, BUILD_DIR, BUILD_SCRIPT, REPO, bundle_refs
from tests.e2e.solutions import Solution
from tests.servers import clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def _advise_on_astronaut(solution: Any) -> Any:
    advice = solution.advise(data.astronaut())
    assert len(advice.faces) == 1
    return advice


def _classify_one_setosa(solution: Any) -> Any:
    reply = solution.classify([5.1], [3.5], [1.4], [0.2])
    assert reply.species == ["setosa"]
    return reply


# One quick real call per blueprint (it returns the answer); a new blueprint fails below
# until it has one here.
SAMPLE_CALLS: dict[str, Callable[[Any], Any]] = {
    "photo-advisor": _advise_on_astronaut,
    "iris-chain": _classify_one_setosa,
}

by_name = pytest.mark.parametrize("blueprint", BLUEPRINTS, ids=lambda p: p.stem)


def test_there_are_blueprints_to_test():
    assert {p.stem for p in BLUEPRINTS} >= {"photo-advisor", "iris-chain"}


def test_readme_shows_the_checked_in_photo_advisor_blueprint():
    section = (REPO / "README.md").read_text().split("\n## Compose models\n", 1)[1]
    shown = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    blueprint = REPO / "blueprints" / "photo-advisor.yaml"
    assert yaml.safe_load(shown) == yaml.safe_load(blueprint.read_text())


@by_name
def test_bundles_are_the_ones_examples_build_makes(blueprint: Path):
    known = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    refs = bundle_refs(blueprint)
    assert refs, "a blueprint of examples runs bundles built from examples/"
    for model, ref in refs.items():
        assert ref.startswith(BUILD_DIR), f"model {model!r}: {ref} is not under {BUILD_DIR}"
        assert ref.removeprefix(BUILD_DIR) in known, f"examples/build.py does not make {ref}"


@by_name
def test_check_passes(layout: Path, blueprint: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "modelwire", "check", str(layout / "blueprints" / blueprint.name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout + proc.stderr
    name = yaml.safe_load(blueprint.read_text())["name"]
    service = "".join(word.title() for word in name.split("-")) + "Service"
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        f"{layout / 'blueprints' / blueprint.name}: ok, service "
        f"modelwire.solutions.{name.replace('-', '_')}.v1.{service}"
    )
    # every bundle model is listed, in blueprint order, with the reference as written
    assert [line for line in lines if line.startswith("  model ") and ": bundle " in line] == [
        f"  model {model}: bundle {ref}" for model, ref in bundle_refs(blueprint).items()
    ]


@by_name
def test_runs_answers_and_sigterm_stops_every_model(layout: Path, blueprint: Path):
    sample_call = SAMPLE_CALLS.get(blueprint.stem)
    if sample_call is None:
        pytest.fail(f"add a sample call for blueprints/{blueprint.name} to SAMPLE_CALLS")
    solution = Solution(layout / "blueprints" / blueprint.name)
    try:
        models = solution.descendants()
        # one process per bundle
        assert len(models) == len(bundle_refs(blueprint)), f"{models}\n{solution.stderr}"
        with modelwire.connect(solution.address, timeout=30) as client:
            sample_call(client)
        status = solution.terminate()
    finally:
        solution.kill()
    assert status == 0, solution.stderr
    assert "Traceback" not in solution.stderr, solution.stderr
    # `run` waits for its models before it exits; allow the kernel a moment to clean up
    deadline = time.monotonic() + 5
    while any(p.alive() for p in models) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in models if p.alive()]
    assert not left, f"model processes {left} outlived `modelwire run`:\n{solution.stderr}"


@by_name
def test_answers_the_same_fused(layout: Path, blueprint: Path):
    """`run --fuse` loads every model into the broker: no model process, the same answer."""
    answers = []
    for args in ((), ("--fuse",)):
        solution = Solution(layout / "blueprints" / blueprint.name, *args)
        try:
            if args:
                assert solution.descendants() == [], solution.stderr
            with modelwire.connect(solution.address, timeout=30) as client:
                answers.append(SAMPLE_CALLS[blueprint.stem](client))
            assert solution.terminate() == 0, solution.stderr
        finally:
            solution.kill()
    unfused, fused = answers
    assert _plain(fused) == _plain(unfused)


def _plain(value: Any) -> Any:
    """An answer as plain data: two clients' enum classes differ, their members' names not."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value

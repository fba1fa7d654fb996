"""`python -m modelwire.runtime.replay BUNDLE`: it serves the bundle in a child, sends every
example, and reports the answers, the load time and the environment; it judges nothing."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from modelwire import __version__
from modelwire.bundle import Bundle, dump
from modelwire.bundle.examples import example_calls
from modelwire.bundle.trial import TRIAL_MARKER, Stage, Trial
from modelwire.runtime.replay import replay
from tests.fixtures.models import echo, hostile

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    examples = {"add": [{"a": 1.0, "b": 2.0}], "echo_record": []}
    return dump(echo.model(), "echo", tmp_path_factory.mktemp("b") / "echo.zip", examples=examples)


def test_every_call_is_answered_and_reported(bundle: Path) -> None:
    trial = replay(bundle, load_timeout=60, repeat=3)
    b = Bundle(bundle)
    calls = example_calls(b.manifest, b.read)
    assert trial.stage is Stage.DONE
    assert trial.exit_status is None
    assert trial.load_seconds is not None and trial.load_seconds > 0
    assert trial.calls_seconds is not None
    by_method = {a.method: a for a in trial.answers}
    assert list(by_method) == [c.method for c in calls]
    add = by_method["add"]
    assert add.status == "OK"
    assert add.responses == (b.read("examples/add/0.response.pb"),)
    assert len(add.latencies_ms) == 3
    assert (by_method["fail"].status, by_method["fail"].details) == (
        "INTERNAL",
        "fail: the model raised RuntimeError; the traceback is in the server's log",
    )
    assert len(by_method["fail"].latencies_ms) == 1  # a failed call is not repeated
    assert by_method["reject"].status == "INVALID_ARGUMENT"
    assert trial.python == platform.python_version()
    assert ("modelwire", __version__) in trial.packages
    assert any('"message": "stopped"' in line for line in trial.log_tail)


def test_a_model_that_exits_at_load_is_reported_with_its_status(tmp_path: Path) -> None:
    path = dump(hostile.exits_at_load(), "exits", tmp_path / "exits")
    trial = replay(path, load_timeout=60)
    assert (trial.stage, trial.exit_status, trial.answers) == (Stage.LOADING, 3, ())


def test_a_model_that_hangs_at_load_is_stopped_at_the_load_timeout(tmp_path: Path) -> None:
    path = dump(hostile.hangs_at_load(), "hangs", tmp_path / "hangs")
    trial = replay(path, load_timeout=3)
    assert (trial.stage, trial.exit_status, trial.note) == (
        Stage.LOADING,
        None,
        "no SERVING within 3 s",
    )
    assert not trial.out_of_time


def test_the_time_limit_stops_it_and_says_so(tmp_path: Path) -> None:
    path = dump(hostile.hangs_at_load(), "hangs", tmp_path / "hangs")
    trial = replay(path, load_timeout=60, time_limit=2)
    assert (trial.stage, trial.out_of_time) == (Stage.LOADING, True)


def test_the_command_prints_the_trial_after_its_marker(bundle: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelwire.runtime.replay", str(bundle), "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (line,) = [x for x in proc.stdout.splitlines() if x.startswith(TRIAL_MARKER)]
    trial = Trial.from_json(json.loads(line[len(TRIAL_MARKER) :]))
    assert trial.stage is Stage.DONE
    assert all(len(a.latencies_ms) == 1 for a in trial.answers)
    assert '"message": "stopped"' in proc.stderr  # the server's log goes to stderr

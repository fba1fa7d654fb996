"""`modelwire validate BUNDLE`: the report on stdout (text or --json), progress on stderr,
and exit status 1 with the reason when the validation fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelwire.bundle import dump
from tests.fixtures.models import hostile

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
USAGE = "Usage: modelwire validate [OPTIONS] BUNDLE\nTry 'modelwire validate --help' for help.\n\n"


def test_a_passing_bundle_prints_its_report_and_exits_0(cli, tmp_path: Path, restore_logging):
    path = dump(hostile.answers_at_random(), "rand", tmp_path / "rand")
    result = cli("validate", str(path), "--repeat", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"validation of rand 1.0.0 ({path}): PASSED"
    assert "  examples     1 generated" in lines
    assert "    passed    roll generated #0" in [
        x[: len("    passed    roll generated #0")] for x in lines
    ]
    stderr = result.stderr.splitlines()
    assert "  serving the bundle in the venv and sending 1 requests" in stderr
    assert '"message": "validated rand 1.0.0 in venv: passed"' in stderr[-1]


def test_a_failing_bundle_exits_1_with_its_reason(cli, tmp_path: Path, restore_logging):
    path = dump(hostile.exits_at_load(), "exits", tmp_path / "exits")
    result = cli("validate", str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"validation of exits 1.0.0 ({path}): FAILED (crashed)"
    reason = result.stderr.splitlines()[-1]
    assert reason.startswith("error: the server exited with status 3 while loading: ")


def test_json_is_the_report_for_tools(cli, tmp_path: Path, restore_logging):
    path = dump(hostile.answers_at_random(), "rand", tmp_path / "rand", examples={"roll": [0.0]})
    result = cli("validate", str(path), "--json", "--repeat", "1")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert (doc["passed"], doc["failure"], doc["examples_kind"]) == (False, "answer", "recorded")
    assert result.stderr.splitlines()[-1] == f"error: {doc['reason']}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--memory", "lots"),
            "Error: Invalid value for '--memory': expected a size such as 512m or 2g\n",
            id="memory",
        ),
        pytest.param(
            ("--memory", "1m"),
            "Error: Invalid value for '--memory': at least 64m: a Python server needs that much\n",
            id="memory too small",
        ),
        pytest.param(
            ("--repeat", "0"),
            "Error: Invalid value for '--repeat': 0 is not in the range 1<=x<=10000.\n",
            id="repeat",
        ),
    ],
)
def test_bad_options_are_usage_errors(cli, tmp_path: Path, args, message):
    result = cli("validate", str(tmp_path), *args)
    assert (result.exit_code, result.output) == (2, USAGE + message)


def test_a_missing_bundle_is_an_error(cli, tmp_path: Path, restore_logging):
    result = cli("validate", str(tmp_path / "nope"))
    assert (result.exit_code, result.output) == (
        1,
        f"error: bundle {tmp_path / 'nope'}: no such file or directory\n",
    )

"""Progress on stderr (cli/progress.py): tqdm bars on a terminal; off one, no bar, and an image
build's lines as plain lines. The bars are checked on a real pseudo-terminal."""

from __future__ import annotations

import sys

import pytest

from modelwire.cli.progress import build_progress, transfer
from tests.cli.conftest import run_on_a_terminal

BUILD_LINES = [
    "pulling python:3.11-slim",
    "Step 1/3 : FROM python:3.11-slim",
    "Step 2/3 : RUN pip install --no-index /wheels/*",
    "Step 3/3 : COPY bundle /bundle",
    "building modelwire/b:1.0.0 from /tmp/ctx",
    "Step 1/2 : FROM python:3.11-slim",
    "Step 2/2 : COPY bundle /bundle",
]

_BUILD = f"""
from modelwire.cli.progress import build_progress
with build_progress() as progress:
    for line in {BUILD_LINES!r}:
        progress(line)
"""

_TRANSFER = """
from modelwire.cli.progress import transfer
with transfer("pushing m:1.0.0") as progress:
    for done in range(0, 3_000_001, 500_000):
        progress(done, 3_000_000)
"""


def test_off_a_terminal_a_transfer_draws_nothing(capsys):
    with transfer("pushing m:1.0.0") as progress:
        for done in range(0, 1001, 100):
            progress(done, 1000)
    assert capsys.readouterr() == ("", "")


def test_off_a_terminal_build_lines_print_as_they_come(capsys):
    with build_progress() as progress:
        for line in BUILD_LINES:
            progress(line)
    assert capsys.readouterr() == ("", "".join(f"  {line}\n" for line in BUILD_LINES))


@pytest.mark.parametrize("columns", [100, 0], ids=["sized", "unsized-pty"])
def test_on_a_terminal_a_transfer_is_one_bar_redrawn_in_place(columns):
    code, out, terminal = run_on_a_terminal([sys.executable, "-c", _TRANSFER], columns=columns)
    assert (code, out) == (0, ""), terminal
    frames = terminal.rstrip("\r\n").split("\r")[1:]
    assert frames[0].startswith("pushing m:1.0.0: ")
    assert frames[-1].startswith("pushing m:1.0.0: 100%|██"), frames
    assert "| 3.00M/3.00M [" in frames[-1]
    assert frames[-1].endswith("B/s]")
    assert all(len(f) <= (columns or 80) for f in frames), frames
    assert "\n" not in terminal.rstrip("\r\n")  # one line, redrawn


def test_on_a_terminal_each_build_is_a_bar_over_its_steps_and_other_lines_print_above():
    code, out, terminal = run_on_a_terminal([sys.executable, "-c", _BUILD], columns=100)
    assert (code, out) == (0, ""), terminal
    lines = [line.rsplit("\r", 1)[-1] for line in terminal.split("\r\n")[:-1]]
    assert lines[0] == "  pulling python:3.11-slim"
    assert lines[1].startswith("  step 3/3 |") and lines[1].endswith(" done"), lines
    assert lines[2] == "  building modelwire/b:1.0.0 from /tmp/ctx"
    assert lines[3].startswith("  step 2/2 |") and lines[3].endswith(" done"), lines
    assert len(lines) == 4
    # while it runs, the bar names the step that runs
    assert "  step 2/3 |" in terminal and "RUN pip install --no-index /wheels/*" in terminal

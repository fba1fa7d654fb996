"""`modelwire dump ... --example METHOD=JSON`: examples from the command line, in protobuf's
JSON mapping, recorded with the model's answers; bad ones are usage errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelwire.bundle import load
from modelwire.cli import main

MODEL_FILE = """\
    from modelwire import Model

    def double(x: float) -> float:
        if x < 0:
            raise ValueError(f"x must not be negative, got {x}")
        return 2 * x

    def add(a: int, b: int) -> int:
        return a + b

    model = Model(double=double, add=add)
    """
USAGE = "Usage: modelwire dump [OPTIONS] MODEL NAME\nTry 'modelwire dump --help' for help.\n\n"


@pytest.fixture
def model_ref(tmp_path: Path) -> str:
    path = tmp_path / "calc_model.py"
    path.write_text(textwrap.dedent(MODEL_FILE))
    return f"{path}:model"


def dump(*args: str) -> object:
    return CliRunner().invoke(main, ["dump", *args], prog_name="modelwire")


def test_examples_are_recorded_with_the_answers(model_ref, tmp_path, restore_logging):
    out = tmp_path / "calc"
    result = dump(
        model_ref,
        "calc",
        "-o",
        str(out),
        "--example",
        'double={"x": 2}',
        "--example",
        'add={"a": 2, "b": "40"}',
        "--example",
        "double={}",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(
        "  requires  (nothing)\n  example   add: 1 recorded\n  example   double: 2 recorded\n"
    )
    examples = load(out).examples
    assert [(e.request, e.response) for e in examples["double"]] == [(2.0, 4.0), (0.0, 0.0)]
    assert [(e.request, e.response) for e in examples["add"]] == [({"a": 2, "b": 40}, 42)]


@pytest.mark.parametrize(
    ("example", "code", "output"),
    [
        pytest.param(
            "double",
            2,
            USAGE + "Error: Invalid value for '--example': 'double' is not METHOD=JSON "
            "(e.g. classify='{\"sepal_length\": [5.1]}')\n",
            id="no equals sign",
        ),
        pytest.param(
            'triple={"x": 1}',
            2,
            USAGE + "Error: examples given for 'triple', which is not a method of the model "
            "(its methods: double, add)\n",
            id="unknown method",
        ),
        pytest.param(
            'double={"x": "two"}',
            2,
            USAGE + "Error: example 0 of 'double': not a valid DoubleRequest in JSON: Failed "
            "to parse x field: Couldn't parse float: two at DoubleRequest.x.\n",
            id="a value that is not of its field's type",
        ),
        pytest.param(
            'double={"x": -1}',
            1,
            "error: example 0 of 'double': the model raised ValueError: x must not be negative, "
            "got -1.0; fix the example or the model\n",
            id="the model raises",
        ),
    ],
)
def test_bad_examples_write_nothing(model_ref, tmp_path, restore_logging, example, code, output):
    out = tmp_path / "calc"
    result = dump(model_ref, "calc", "-o", str(out), "--example", example)
    assert (result.exit_code, result.output) == (code, output)
    assert not out.exists()

"""`modelwire dump FILE.py:ATTR NAME -o DIR`: exact output, exit 2 for usage errors."""

from __future__ import annotations

import sysconfig
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelwire.bundle import load, read_manifest
from modelwire.cli import main

MODEL_FILE = """\
    from modelwire import Model

    def double(x: float) -> float:
        \"\"\"Twice x.\"\"\"
        return 2 * x

    model = Model(double=double)
    answer = 42
    """

USAGE = "Usage: modelwire dump [OPTIONS] MODEL NAME\nTry 'modelwire dump --help' for help.\n\n"


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "doubler_model.py"
    path.write_text(textwrap.dedent(MODEL_FILE))
    return path


@pytest.fixture
def dump_cli(restore_logging):
    def invoke(*args):
        return CliRunner().invoke(main, ["dump", *map(str, args)], prog_name="modelwire")

    return invoke


def test_dump_writes_the_bundle_and_prints_its_service(dump_cli, model_file, tmp_path):
    out = tmp_path / "doubler"
    result = dump_cli(f"{model_file}:model", "doubler", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"wrote {out}\n"
        "  service   modelwire.models.doubler.v1.DoublerService\n"
        "  rpc       Double(DoubleRequest) returns (DoubleResponse)\n"
        "  requires  (nothing)\n"
    )
    assert load(out).double(2.5) == 5.0


def test_dump_passes_version_description_tags_and_requirements(dump_cli, model_file, tmp_path):
    out = tmp_path / "doubler.zip"
    result = dump_cli(
        f"{model_file}:model", "doubler", "-o", out, "--version", "2.0.1",
        "--description", "doubles", "--tag", "math", "--tag", "toy", "-r", "numpy>=1.24",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "  service   modelwire.models.doubler.v2.DoublerService",
        "  rpc       Double(DoubleRequest) returns (DoubleResponse)",
        "  requires  numpy>=1.24",
    ]
    manifest = read_manifest(out)
    assert (manifest.version, manifest.description, manifest.tags) == (
        "2.0.1",
        "doubles",
        ("math", "toy"),
    )


@pytest.mark.parametrize(
    ("ref", "error"),
    [
        ("nocolon", "'nocolon' is not MODULE:ATTRIBUTE (e.g. examples/iris/model.py:model)"),
        (":model", "':model' is not MODULE:ATTRIBUTE (e.g. examples/iris/model.py:model)"),
        ("missing.py:model", "file 'missing.py' does not exist"),
        ("no_such_module_xyz:model",
         "cannot import 'no_such_module_xyz': No module named 'no_such_module_xyz'"),
    ],
    ids=["no-colon", "no-module", "no-file", "no-module-found"],
)  # fmt: skip
def test_a_bad_model_reference_is_a_usage_error(dump_cli, tmp_path, ref, error):
    result = dump_cli(ref, "doubler", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"{USAGE}Error: Invalid value for 'MODEL': {error}\n"
    assert not (tmp_path / "out").exists()


def test_a_missing_attribute_is_a_usage_error(dump_cli, model_file, tmp_path):
    result = dump_cli(f"{model_file}:nope", "doubler", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == (
        f"{USAGE}Error: Invalid value for 'MODEL': '{model_file}' has no attribute 'nope'\n"
    )


def test_an_object_that_is_not_a_model_is_a_usage_error(dump_cli, model_file, tmp_path):
    result = dump_cli(f"{model_file}:answer", "doubler", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == (
        f"{USAGE}Error: Invalid value for 'MODEL': "
        f"'{model_file}:answer' is a int, not a modelwire.Model\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_invalid_model_name_is_a_usage_error(dump_cli, model_file, tmp_path):
    result = dump_cli(f"{model_file}:model", "9lives", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr == (
        f"{USAGE}Error: invalid model name or version: "
        "model name '9lives' must start with a letter\n"
    )


def test_an_output_directory_that_is_not_a_bundle_is_an_error_and_is_left_alone(
    dump_cli, model_file, tmp_path
):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    result = dump_cli(f"{model_file}:model", "doubler", "-o", out)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: bundle {out}: the directory exists and is not a bundle; refusing to overwrite it "
        "(choose another path or remove it)\n"
    )
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


TRAINED_FILE = """\
    import sys
    from modelwire import Model

    weights = {"w": 3.0}  # "training" happens when the script runs

    def scale(x: float) -> float:
        return weights["w"] * x

    model = Model(scale=scale)
    if __name__ == "__main__":
        sys.exit("the dump must not run the script's main block")
    """


def test_a_script_model_is_pickled_by_value_and_loads_without_the_script(dump_cli, tmp_path):
    """Like a __main__ script: the trained state is in model.pkl, no code/ is shipped, and
    loading neither needs nor re-runs the file."""
    script = tmp_path / "json.py"  # a stdlib name must not shadow the stdlib module
    script.write_text(textwrap.dedent(TRAINED_FILE))
    out = tmp_path / "bundle"
    result = dump_cli(f"{script}:model", "scaler", "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(read_manifest(out).files) == ["model.pkl", "model.proto", "requirements.txt"]
    script.unlink()
    import json

    stdlib = Path(sysconfig.get_path("stdlib"))
    assert Path(json.__file__) == stdlib / "json" / "__init__.py"  # not shadowed by the script
    assert load(out).scale(2.0) == 6.0


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def f(:\n", "{file}, line 1: SyntaxError: invalid syntax"),
        ("def helper():\n    return 1 / 0\n\nmodel = helper()\n",
         "running it raised ZeroDivisionError: division by zero ({file}, line 2)"),
        ("import no_such_module_xyz\n",
         "running it raised ModuleNotFoundError: No module named 'no_such_module_xyz' "
         "({file}, line 1)"),
        ("import sys\nsys.exit(3)\n", "it called sys.exit(3) while it ran"),
    ],
    ids=["syntax-error", "raises", "missing-import", "exits"],
)  # fmt: skip
def test_a_model_file_that_fails_to_run_is_one_error_line(dump_cli, tmp_path, source, error):
    """The model's own code failing is not a usage error, but still no traceback: the
    line says where it failed and why."""
    path = tmp_path / "broken_model.py"
    path.write_text(source)
    result = dump_cli(f"{path}:model", "doubler", "-o", tmp_path / "out")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"error: cannot load {path}: {error.format(file=path)}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["out", "out.zip"])
def test_an_output_path_that_cannot_be_written_is_one_error_line(
    dump_cli, model_file, tmp_path, name
):
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("precious")
    out = in_the_way / name
    result = dump_cli(f"{model_file}:model", "doubler", "-o", out)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: bundle {out}: cannot write it (File exists: {in_the_way})\n",
    )
    assert in_the_way.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doubler_model.py", "notes.txt"]

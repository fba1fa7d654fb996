"""`modelwire dump FILE.py:ATTR` on a model file that dumps (or pushes) itself, as the
README's own model file does: the command writes its -o and nothing else."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelwire.bundle import Model, build_files, load
from modelwire.bundle.manifest import MANIFEST, PICKLE, REQUIREMENTS, render_manifest
from modelwire.bundle.writer import write_dir
from modelwire.cli import main
from modelwire.errors import BundleError
from tests.bundle.procs import run_python

USAGE = "Usage: modelwire dump [OPTIONS] MODEL NAME\nTry 'modelwire dump --help' for help.\n\n"

# the README's pattern: train at module level, dump at the bottom
SELF_DUMPING = """\
    from modelwire import Model, dump

    weights = {{"w": 3.0}}

    def scale(x: float) -> float:
        return weights["w"] * x

    {tail}
    """


def _script(tmp_path: Path, tail: str) -> Path:
    path = tmp_path / "scaler_model.py"
    path.write_text(textwrap.dedent(SELF_DUMPING).format(tail=textwrap.dedent(tail)))
    return path


def _digests(bundle: Path) -> dict[str, str]:
    return {
        p.relative_to(bundle).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(bundle.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def dump_cli(restore_logging):
    def invoke(*args):
        return CliRunner().invoke(
            main, ["dump", *map(str, args), "--log-format", "console"], prog_name="modelwire"
        )

    return invoke


def test_a_function_instead_of_a_model_leaves_the_files_own_bundle_as_it_was(dump_cli, tmp_path):
    """The README's walk: `python FILE.py` made a good bundle, then `modelwire dump
    FILE.py:scale` named the function. The error comes, and the good bundle is untouched."""
    good = tmp_path / "build" / "scaler"
    script = _script(tmp_path, 'dump(Model(scale=scale), "scaler", "build/scaler")')
    run_python(script, cwd=tmp_path)
    before = _digests(good)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        result = dump_cli(f"{script}:scale", "scaler", "-o", tmp_path / "out")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.endswith(
        f"{USAGE}Error: Invalid value for 'MODEL': '{script}:scale' is a function, not a "
        f"modelwire.Model; make one in the file, model = Model(scale=scale), and dump "
        f"{script}:model\n"
    )
    assert _digests(good) == before
    assert not (tmp_path / "out").exists()
    code = f"import modelwire; print(modelwire.load({str(good)!r}).scale(2.0))"
    assert run_python("-c", code, cwd="/") == "6.0\n"


def test_the_files_own_dump_writes_nothing_and_says_so(dump_cli, tmp_path):
    script = _script(
        tmp_path, 'model = Model(scale=scale)\ndump(model, "scaler", "elsewhere/scaler")'
    )
    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        result = dump_cli(f"{script}:model", "scaler", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"wrote {out}"
    assert (
        f"WARNING modelwire.bundle: {script}, line 9: skipped the file's own dump to "
        "elsewhere/scaler (modelwire dump writes only its -o)\n"
    ) in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "scaler_model.py"]
    code = f"import modelwire; print(modelwire.load({str(out)!r}).scale(2.0))"
    assert run_python("-c", code, cwd="/") == "6.0\n"


def test_what_the_file_pickles_while_it_runs_holds_its_code_by_value(tmp_path):
    """Code that pickles the model as the file runs (as the file's own dump did) gets a
    pickle that loads where the file does not exist, as under `python FILE.py`. In a
    fresh process: cloudpickle remembers a module name registered by an earlier dump."""
    pickled = tmp_path / "model.bin"
    script = _script(
        tmp_path,
        f"""\
        import cloudpickle, pathlib
        model = Model(scale=scale)
        pathlib.Path({str(pickled)!r}).write_bytes(cloudpickle.dumps(model))
        """,
    )
    run_python("-m", "modelwire", "dump", f"{script}:model", "scaler", "-o", tmp_path / "out")
    script.unlink()
    code = (
        "import cloudpickle, pathlib; "
        f"print(cloudpickle.loads(pathlib.Path({str(pickled)!r}).read_bytes()).scale(2.0))"
    )
    assert run_python("-c", code, cwd="/") == "6.0\n"


def test_a_push_in_the_file_is_refused_and_nothing_is_written(dump_cli, tmp_path):
    """A pushed version cannot be taken back: `modelwire dump` never pushes."""
    script = _script(
        tmp_path,
        """\
        import modelwire
        model = Model(scale=scale)
        modelwire.push(model, "scaler", catalog="127.0.0.1:1", token="mwt_x")
        """,
    )
    result = dump_cli(f"{script}:model", "scaler", "-o", tmp_path / "out")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: cannot load {script}: running it raised ModelwireError: push() does not run "
        "under modelwire dump, which writes only its -o; guard the call with "
        '`if __name__ == "__main__":`, or push the bundle with modelwire push '
        f"({script}, line 10)\n"
    )
    assert not (tmp_path / "out").exists()


def _bundle_needing(tmp_path: Path, module: str, requirements: list[str]) -> Path:
    """A bundle whose model.pkl imports `module`, with `requirements` listed."""

    def double(x: float) -> float:
        return 2 * x

    model = Model(double=double)
    files = build_files(model, "doubler")
    files[PICKLE] = f"c{module}\ndouble\n.".encode()  # protocol 0: GLOBAL module name
    files[REQUIREMENTS] = "".join(f"{r}\n" for r in requirements).encode()
    del files[MANIFEST]
    schema, _ = model.named("doubler", "1.0.0")
    files[MANIFEST] = render_manifest(
        "doubler", "1.0.0", schema, description=None, tags=(), requirements=requirements,
        files=files,
    )  # fmt: skip
    out = tmp_path / "doubler"
    write_dir(files, out)
    return out


def test_a_missing_module_names_what_requirements_txt_lists(tmp_path):
    out = _bundle_needing(tmp_path, "no_such_module_xyz", ["numpy==2.0.0", "scikit-learn==1.5.0"])
    with pytest.raises(BundleError) as info:
        load(out)
    assert str(info.value) == (
        f"bundle {out}: unpickling the model needs module 'no_such_module_xyz', which is not "
        "installed here; the bundle requires: numpy==2.0.0, scikit-learn==1.5.0 "
        "(pip install -r requirements.txt)"
    )


def test_a_model_pickled_by_reference_to_its_model_file_says_to_dump_it_again(tmp_path):
    out = _bundle_needing(tmp_path, "__modelwire_script__", [])
    with pytest.raises(BundleError) as info:
        load(out)
    assert str(info.value) == (
        f"bundle {out}: unpickling the model needs module '__modelwire_script__', the model "
        "file that dumped it: its code was pickled by reference, not by value; dump the "
        "model again"
    )

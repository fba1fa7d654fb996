"""The zip form is byte-identical for the same model: within a process and across processes."""

from __future__ import annotations

import zipfile

import pytest

from modelwire.bundle import dump, load
from tests.bundle.procs import REPO, run_python
from tests.fixtures.models import forest, stdlib_only

SCRIPT = REPO / "tests/fixtures/models/stdlib_only.py"


def test_two_dumps_in_one_process_are_byte_identical(tmp_path):
    model = forest.model()
    a = dump(model, "iris", tmp_path / "a.zip", description="d", tags=["x"])
    b = dump(model, "iris", tmp_path / "b.zip", description="d", tags=["x"])
    assert a.read_bytes() == b.read_bytes()


def test_a_model_rebuilt_from_the_same_code_dumps_to_the_same_bytes(tmp_path):
    a = dump(stdlib_only.model(), "summarizer", tmp_path / "a.zip")
    b = dump(stdlib_only.model(), "summarizer", tmp_path / "b.zip")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.slow
def test_dumps_from_processes_with_different_hash_seeds_are_byte_identical(tmp_path):
    """The script's model is pickled by value from __main__, with a set global, a frozenset
    constant (`x in {...}`), an Enum, a dataclass and a NamedTuple: every one of them once
    made the bytes depend on the process (class tracker uuids, string hash order)."""
    zips = []
    for seed in ("1", "2"):
        out = tmp_path / f"seed{seed}.zip"
        assert run_python(SCRIPT, out, cwd=tmp_path, env={"PYTHONHASHSEED": seed}) == ""
        zips.append(out.read_bytes())
    assert zips[0] == zips[1]

    with zipfile.ZipFile(tmp_path / "seed1.zip") as zf:
        # from __main__, a standard-library model needs nothing installed and ships no code
        assert sorted(zf.namelist()) == [
            "model.pkl",
            "model.proto",
            "modelwire.json",
            "requirements.txt",
        ]
        assert zf.read("requirements.txt") == b""
    summarizer = load(tmp_path / "seed1.zip")
    Text = summarizer.binding.messages["Text"]
    Mood = summarizer.binding.enums["Mood"]
    got = summarizer.summarize(Text("The cat and the hat of a cat", Mood.PLAIN))
    assert got.counts == {"cat": 2, "hat": 1}
    assert summarizer.summarize(Text("HELLO", Mood.PLAIN)).words == ["HELLO"]

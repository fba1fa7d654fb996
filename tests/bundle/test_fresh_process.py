"""Bundles load and answer in a fresh process that has none of the contributor's files."""

from __future__ import annotations

import importlib.metadata as md
import json
import shutil
import textwrap
from pathlib import Path

import pytest

from modelwire.bundle import read_manifest
from modelwire.runtime.client import connect
from tests.bundle.procs import REPO, run_python

pytestmark = pytest.mark.slow

PROJECT = {
    "helpers.py": """\
        import numpy as np

        def total(xs):
            return float(np.sum(xs))
        """,
    "feats/__init__.py": "from .scale import scale\n",
    "feats/scale.py": """\
        def scale(xs, k):
            return [x * k for x in xs]
        """,
    "train.py": """\
        import sys

        import helpers
        from feats import scale
        from modelwire import Model, dump

        def score(xs: list[float], k: float) -> float:
            \"\"\"Scale, then sum.\"\"\"
            return helpers.total(scale(xs, k))

        model = Model(score=score)

        if __name__ == "__main__":
            for out in sys.argv[1:]:
                dump(model, "score", out)
        """,
}

CALL = """\
import sys
import modelwire

model = modelwire.load(sys.argv[1])
print(model.score([1.0, 2.0, 3.5], k=2.0))
"""


@pytest.fixture(scope="module")
def project_bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A project dumped from its own folder, which is then deleted: (directory, zip)."""
    root = tmp_path_factory.mktemp("contributor")
    project = root / "project"
    for rel, text in PROJECT.items():
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text(textwrap.dedent(text))
    out = root / "out"
    run_python("train.py", out / "score", out / "score.zip", cwd=project)
    shutil.rmtree(project)
    return out / "score", out / "score.zip"


def test_the_project_modules_are_shipped_and_their_imports_listed(project_bundles):
    directory, _ = project_bundles
    shipped = sorted(p.relative_to(directory).as_posix() for p in (directory / "code").rglob("*"))
    assert shipped == [
        "code/feats",
        "code/feats/__init__.py",
        "code/feats/scale.py",
        "code/helpers.py",
    ]
    assert read_manifest(directory).requirements == (f"numpy=={md.version('numpy')}",)


@pytest.mark.parametrize("form", ["directory", "zip"])
def test_a_bundle_with_local_code_loads_and_answers_in_a_fresh_process(
    project_bundles, tmp_path, form
):
    bundle = project_bundles[0] if form == "directory" else project_bundles[1]
    # bytecode may be written into the bundle's code/ (it must not break later loads)
    env = {"PYTHONDONTWRITEBYTECODE": ""}
    for _ in range(2):
        assert run_python("-c", CALL, bundle, cwd=tmp_path, env=env) == "13.0\n"


def test_a_bundle_with_local_code_is_served_by_a_modelwire_serve_process(
    project_bundles, serve_bundle
):
    server = serve_bundle(project_bundles[0])
    with connect(server.address, timeout=30) as client:
        assert client.score([1.0, 2.0, 3.5], k=2.0) == 13.0
        assert client.score.__doc__ == "Scale, then sum."


def test_the_iris_example_written_with_pep_563_in_main_dumps_and_loads_in_a_fresh_process(
    tmp_path,
):
    bundle = tmp_path / "iris"
    assert run_python(REPO / "examples/iris/model.py", bundle, cwd=tmp_path) == f"wrote {bundle}\n"
    manifest = read_manifest(bundle)
    assert manifest.requirements == (
        f"numpy=={md.version('numpy')}",
        f"scikit-learn=={md.version('scikit-learn')}",
    )
    assert not (bundle / "code").exists()  # defined in __main__: everything is in model.pkl
    call = (
        "import sys, modelwire\n"
        "iris = modelwire.load(sys.argv[1])\n"
        "Flowers = iris.binding.messages['ClassifyRequest']\n"
        "print(iris.classify(Flowers([5.1, 7.7], [3.5, 3.0], [1.4, 6.1], [0.2, 2.3]))"
        ".iris_type.tolist())\n"
    )
    assert run_python("-c", call, bundle, cwd=tmp_path) == "[0, 2]\n"


ACUMOS = REPO / "tests/fixtures/models/acumos_namedtuple.py"


def test_create_namedtuple_models_dumped_from_main_load_and_answer_in_a_fresh_process(tmp_path):
    bundle = tmp_path / "scorer.zip"
    assert run_python(ACUMOS, bundle, cwd=tmp_path) == ""  # library code prints nothing
    call = (
        "import json, sys, modelwire\n"
        "m = modelwire.load(sys.argv[1])\n"
        "ScoreInput = m.binding.messages['ScoreInput']\n"
        "out = m.score(ScoreInput([1.0, 2.0, 4.0], 0.5))\n"
        "print(json.dumps([type(out).__name__, out._asdict()]))\n"
    )
    out = json.loads(run_python("-c", call, bundle, cwd=tmp_path))
    assert out == ["ScoreOutput", {"total": 3.5, "count": 3}]

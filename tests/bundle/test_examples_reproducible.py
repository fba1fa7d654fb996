"""Every example in examples/, and the README's own model, dump to the same bytes again:
a re-push of an unchanged model is a no-op, not ALREADY_EXISTS."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bundle.procs import REPO, run_python
from tests.servers import clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _build(out, seed: str) -> list[str]:
    """`examples/build.py --out OUT` in a fresh process with its own hash seed; its lines."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "build.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=clean_env(PYTHONHASHSEED=seed),
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_every_example_is_unchanged_when_built_again(tmp_path):
    out = tmp_path / "build"
    first = _build(out, "1")
    bundles = [line.split()[-1] for line in first]
    assert first == [f"new       {b}" for b in bundles]
    listed = subprocess.run(
        [sys.executable, str(REPO / "examples" / "build.py"), "--list"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.split()
    assert sorted(Path(b).name for b in bundles) == sorted(listed)  # every example, once
    second = _build(out, "2")
    assert second == [f"unchanged {b}" for b in bundles]


def _readme_model() -> str:
    """The README's 'A model of your own' code block, as a reader copies it."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## A model of your own") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_the_readmes_model_dumps_to_the_same_bytes_each_run(tmp_path):
    """Run as the README says, twice in the same place (the pickle holds the script's path)."""
    (tmp_path / "iris_model.py").write_text(_readme_model())
    manifests = []
    for seed in ("1", "2"):
        shutil.rmtree(tmp_path / "build", ignore_errors=True)
        run_python("iris_model.py", cwd=tmp_path, env={"PYTHONHASHSEED": seed}, timeout=120)
        manifests.append((tmp_path / "build" / "iris" / "modelwire.json").read_bytes())
    assert manifests[0] == manifests[1]

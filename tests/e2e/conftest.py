"""End-to-end fixtures: the checked-in blueprints, run against freshly built example bundles.

The blueprints name their bundles relative to themselves
(`../examples/build/face-detector`). The session builds the bundles with
`examples/build.py --out` into a temporary copy of the repository's layout,

    <tmp>/blueprints/*.yaml          byte-for-byte copies of the checked-in files
    <tmp>/examples/build/<bundle>/   what examples/build.py writes

so the files under test are exactly the checked-in ones, their relative paths
resolve as they do in the repository, and a test run never writes into the
working tree (nor races a developer's own examples/build/).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.solutions import Solution
from tests.servers import clean_env

REPO = Path(__file__).resolve().parents[2]
BLUEPRINTS = sorted((REPO / "blueprints").glob("*.yaml"))
BUILD_SCRIPT = REPO / "examples" / "build.py"
BUILD_DIR = "../examples/build/"  # how a blueprint names a bundle built by examples/build.py


def bundle_refs(blueprint: Path) -> dict[str, str]:
    """model name -> its `bundle:` reference, as written in the blueprint."""
    models = yaml.safe_load(blueprint.read_text())["models"]
    return {name: ref["bundle"] for name, ref in models.items() if "bundle" in ref}


@pytest.fixture(scope="session")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary root with blueprints/ (copies) and examples/build/ (the bundles they use)."""
    root = tmp_path_factory.mktemp("repo")
    names = sorted(
        {
            ref.removeprefix(BUILD_DIR)
            for blueprint in BLUEPRINTS
            for ref in bundle_refs(blueprint).values()
        }
    )
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--out", str(root / "examples" / "build"), *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=clean_env(),
    )
    assert proc.returncode == 0, f"examples/build.py failed:\n{proc.stdout}{proc.stderr}"
    (root / "blueprints").mkdir()
    for blueprint in BLUEPRINTS:
        shutil.copyfile(blueprint, root / "blueprints" / blueprint.name)
    return root


def start(layout: Path, name: str) -> Iterator[Solution]:
    """Run blueprints/<name>.yaml for a test module; stop it (and its models) afterwards."""
    solution = Solution(layout / "blueprints" / f"{name}.yaml")
    try:
        yield solution
    finally:
        if solution.proc.poll() is None:
            try:
                solution.terminate()
            finally:
                solution.kill()

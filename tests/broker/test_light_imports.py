"""`check`, `graph` and `stubs` of a blueprint load neither the process launcher nor the
container runner: they read, resolve and type-check it (`modelwire.broker.check`) and stop."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures" / "blueprints"
# what only `modelwire run` (and `export`, `build`) need
NOT_LOADED = {
    "modelwire.broker.launch",
    "modelwire.broker.service",
    "modelwire.containers.runner",
    "modelwire.containers.images",
    "modelwire.hosting.process",
    "docker",
}

PROGRAM = """
import sys
from modelwire.cli.main import main
try:
    main(sys.argv[1:], prog_name="modelwire")
except SystemExit as exc:
    assert exc.code in (0, None), f"exit status {exc.code}"
print(" ".join(sys.modules))
"""


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["check", "blueprint.yaml"], id="check"),
        pytest.param(["graph", "blueprint.yaml", "-o", "graph.dot"], id="graph"),
        pytest.param(["stubs", "blueprint.yaml", "-o", "stubs"], id="stubs"),
    ],
)
def test_checking_a_blueprint_does_not_load_the_launcher(args, bundles_root, tmp_path):
    case = bundles_root / f"light-{args[0]}"
    shutil.rmtree(case, ignore_errors=True)
    shutil.copytree(FIXTURES / "ok", case)
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, *args],
        cwd=case,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.splitlines()[-1].split())
    assert "modelwire.broker.check" in loaded
    assert NOT_LOADED & loaded == set()

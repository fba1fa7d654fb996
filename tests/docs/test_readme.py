"""README.md runs as written: every block, in order, in a scratch copy of the repository.

The script comes from `tests.docs.readme_script` (which explains the markers); this test
runs it with the repository's .venv, as a user who followed the README's set-up would.
Docker-marked: the README builds and runs an image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.docs.readme_script import script
from tests.source_tree import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1500)]


def _scratch_clone(dest: Path) -> None:
    """The files a fresh clone has (tracked ones, as they are now), and the set-up's .venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        src = ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    (dest / ".venv").symlink_to(ROOT / ".venv")


def test_every_block_of_the_readme_runs_in_order(tmp_path: Path) -> None:
    clone = tmp_path / "modelwire"
    _scratch_clone(clone)
    (clone / "readme.sh").write_text(script((ROOT / "README.md").read_text()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
    env["MODELWIRE_CONFIG"] = str(tmp_path / "no-config.toml")
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT / ".venv"))
    )
    proc = subprocess.run(
        ["bash", "readme.sh"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    if proc.returncode != 0:
        lines = re.findall(r"@@readme:(\d+)", proc.stdout)
        where = f"README.md line {lines[-1]}" if lines else "before the first block"
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        pytest.fail(
            f"the README failed at {where} (exit {proc.returncode}):\n"
            f"--- stdout (tail)\n{tail}\n--- stderr (tail)\n{proc.stderr[-4000:]}"
        )

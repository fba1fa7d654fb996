"""Run Python in a fresh process, as a contributor or a server would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_python(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> str:
    """`python ARGS...` in a fresh interpreter; returns stdout, fails the test with stderr."""
    proc = subprocess.run(
        [sys.executable, *map(str, args)],
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"python {' '.join(map(str, args))} exited with {proc.returncode}:\n{proc.stderr}"
        )
    return proc.stdout

"""A clean copy of this repository's source tree, for tests that build or install the
project as a user would: no .venv, no build/ or egg-info left by earlier builds, no caches."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_LEFT_OUT = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".*_cache",
    ".hypothesis",
    ".import_linter_cache",
)


def copy_source_tree(dest: Path) -> Path:
    """Copy the repository to `dest` (which must not exist) and return it."""
    shutil.copytree(ROOT, dest, ignore=_LEFT_OUT)
    return dest

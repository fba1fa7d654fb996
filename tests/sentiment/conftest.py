"""The sentiment example's modules (examples/sentiment/*.py import each other as top-level
modules, as they do when run as scripts) on sys.path for its tests."""

from __future__ import annotations

import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sentiment"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))

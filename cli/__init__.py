"""The `modelwire` command line: click commands that parse, call one function, render.

The top layer: it may import every other one, and none imports it.
"""

from __future__ import annotations

from modelwire.cli.main import main as main

__all__ = ["main"]

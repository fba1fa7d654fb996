"""`python -m modelwire` runs the CLI."""

from __future__ import annotations

from modelwire.cli import main

main()

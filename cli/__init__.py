"""The `modelwire` command line: click commands that parse, call one function, render.

The top layer: it may import every other one, and none imports it.
"""

from __future__ import annotations

import os

# grpc core writes some events (a failed TLS handshake, each one) to stderr as unstructured
# INFO lines, in the middle of the JSON log; modelwire reports those failures itself. A
# GRPC_VERBOSITY the user sets still wins. (Before grpc is imported: it reads it then.)
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from modelwire.cli.main import main as main

__all__ = ["main"]

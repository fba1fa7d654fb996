"""Logging set-up, called once by the CLI; library code only creates loggers.

`configure(level, fmt)`: ``fmt='json'`` writes one JSON object per line (the
default when stderr is not a terminal), ``'console'`` writes readable text.
Fields passed with ``extra=`` (`bundle`, `rpc`, `status`, `ms`, ...) are kept.
"""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = ["configure"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class _ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


def configure(level: str = "info", fmt: str | None = None) -> None:
    """Send modelwire's logs to stderr at `level`, as JSON or console text."""
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    if fmt not in ("json", "console"):
        raise ValueError(f"log format must be 'json' or 'console', not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _ConsoleFormatter())
    root = logging.getLogger("modelwire")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False

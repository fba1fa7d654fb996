"""The models' log lines, logged again by the broker, each record naming its model.

Models log JSON (`--log-format json`); the broker's own format then applies to their
records too. Their tracebacks matter most: a failed step's status tells the caller the
traceback is in the model's log. `relay` returns the line as text, so the last ones can
be quoted when a model ends.
"""

from __future__ import annotations

import json
import logging

__all__ = ["relay"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_RECORD_KEYS = frozenset({"time", "level", "logger", "message", "traceback"})
_STANDARD = frozenset(vars(logging.makeLogRecord({})))  # names `extra=` must not use
models_logger = logging.getLogger("modelwire.broker.models")


def relay(model: str, line: str) -> str | None:
    """Log a model's log line again with `model` added; the line as readable text (its
    message, or the line itself if it is no JSON record), or None for a blank line."""
    text = line.rstrip("\n")
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or "message" not in doc:
        # not a log record: e.g. `modelwire serve` reporting why it cannot start
        level = logging.ERROR if text.startswith("error: ") else logging.WARNING
        models_logger.log(level, "%s: %s", model, text, extra={"model": model})
        return text
    message = str(doc["message"])
    shown = message
    if doc.get("traceback"):
        message += "\n" + str(doc["traceback"])
        shown += " (" + str(doc["traceback"]).strip().splitlines()[-1] + ")"
    extra = {k: v for k, v in doc.items() if k not in _RECORD_KEYS and k not in _STANDARD}
    extra["model"] = model
    extra["model_logger"] = doc.get("logger", "")
    level = _LEVELS.get(str(doc.get("level")), logging.INFO)
    models_logger.log(level, "%s: %s", model, message, extra=extra)
    return shown

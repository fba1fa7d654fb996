"""The broker's log of failed calls, bounded: one line per distinct failure per interval.

A model that is down fails every call of the methods that need it, hundreds a second
under load; a line for each drowned the log (2,331 near-identical lines in 5 s). A
failure is distinct by method, status code and failing step. Its first occurrence is
logged at once, with its message; later ones are counted, and when the interval ends one
line says how many there were and the latest message. A failure that did not recur
within an interval is forgotten, so its next occurrence is logged at once again.

Runs on the broker's event loop (the interval ends on `loop.call_later`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

__all__ = ["FailureLog"]

logger = logging.getLogger(__name__)


@dataclass
class _Seen:
    latest: str
    count: int = 0  # since the line last logged
    handle: asyncio.TimerHandle | None = None


class FailureLog:
    """Logs failed calls, each distinct failure at most once per `interval` seconds."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._seen: dict[tuple[str, str, str], _Seen] = {}

    def failed(self, method: str, code: str, step: str, message: str) -> None:
        """One call of `method` failed with `code` at `step` ('' for none), saying `message`."""
        key = (method, code, step)
        seen = self._seen.get(key)
        if seen is not None:
            seen.count += 1
            seen.latest = message
            return
        logger.warning(
            "%s failed: %s",
            method,
            message,
            extra={"rpc": method, "status": code, "step": step or None},
        )
        seen = self._seen[key] = _Seen(message)
        seen.handle = asyncio.get_running_loop().call_later(self.interval, self._flush, key)

    def _flush(self, key: tuple[str, str, str]) -> None:
        seen = self._seen[key]
        if seen.count == 0:  # quiet for a whole interval: the next one is logged at once
            del self._seen[key]
            return
        self._log_count(key, seen)
        seen.handle = asyncio.get_running_loop().call_later(self.interval, self._flush, key)

    def _log_count(self, key: tuple[str, str, str], seen: _Seen) -> None:
        method, code, step = key
        logger.warning(
            "%s failed %d more times like this in the last %g s (%s%s); the latest: %s",
            method,
            seen.count,
            self.interval,
            code,
            f" at step {step!r}" if step else "",
            seen.latest,
            extra={"rpc": method, "status": code, "step": step or None, "count": seen.count},
        )
        seen.count = 0

    def close(self) -> None:
        """Log what is counted and not logged yet (the solution is stopping)."""
        for key, seen in self._seen.items():
            if seen.handle is not None:
                seen.handle.cancel()
            if seen.count:
                self._log_count(key, seen)
        self._seen.clear()

"""Run one batch: call a batched method's batch function and answer each of its requests.

`BatchFunction.run(items)` gives one outcome per request, in order: its result, or the
error its call ends with. A batch function that raises runs again on each half of the
batch, down to single requests, so that only the requests that make it raise fail, each
with the ModelFailed of its own call (what the model raised for it alone, the status it
would have had unbatched). One that returns the wrong number of results, or no iterable,
fails every request of that batch with BadResult naming both counts.

It knows nothing of queues, callers or threads (`modelwire.runtime.batching` does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from modelwire.errors import BadResult, ModelFailed

__all__ = ["BatchFunction", "Outcome"]

logger = logging.getLogger(__name__)

Outcome = tuple[Any, "BaseException | None"]
"""(the request's result, None), or (None, the error its call ends with)."""


class BatchFunction:
    """A batch function as the runtime calls it.

    Args:
        method: the method's name (in errors and logs).
        fn: the batch function.
        keywords: the request's parameters, each passed to `fn` as a keyword with a
            list of values; None when a request is one value (a message), and `fn`
            gets the list of them as its one positional argument.
    """

    def __init__(
        self, method: str, fn: Callable[..., Any], keywords: Sequence[str] | None = None
    ) -> None:
        self.method = method
        self._fn = fn
        self._keywords = tuple(keywords) if keywords is not None else None

    def run(self, items: list[Any]) -> list[Outcome]:
        """One outcome per item, in order."""
        out: list[Outcome] = []
        self._solve(items, out)
        return out

    def _solve(self, items: list[Any], out: list[Outcome]) -> None:
        results, raised = self._attempt(items)
        if raised is not None:
            if len(items) == 1:
                out.append((None, ModelFailed(self.method, raised)))
                return
            logger.debug(
                "%s: a batch of %d raised %s; running it again in halves",
                self.method,
                len(items),
                type(raised).__name__,
                extra={"rpc": self.method},
            )
            half = len(items) // 2
            self._solve(items[:half], out)
            self._solve(items[half:], out)
            return
        if isinstance(results, type):
            reason = f"the batch function returned {results.__name__}, not a list of results"
        elif results is not None and len(results) != len(items):
            n = len(items)
            reason = (
                f"the batch function returned {len(results)} results for "
                f"{n} request{'s' if n != 1 else ''}"
            )
        else:
            assert results is not None
            out.extend((result, None) for result in results)
            return
        out.extend((None, BadResult(self.method, reason)) for _ in items)

    def _attempt(self, items: list[Any]) -> tuple[list[Any] | type | None, BaseException | None]:
        """(the results as a list, None); (the type returned, None) when it is not
        iterable; or (None, what the model raised). The halves run outside this handler,
        so that each culprit's traceback is its own."""
        try:
            returned = self._invoke(items)
            if isinstance(returned, list):
                return returned, None
            try:
                results = iter(returned)
            except TypeError:
                return type(returned), None
            return list(results), None  # a generator's own exception is the model's
        except (Exception, SystemExit) as exc:
            # sys.exit() in a model must not end the server or leave its callers waiting
            return None, exc

    def _invoke(self, items: list[Any]) -> Any:
        if self._keywords is None:
            return self._fn(items)
        return self._fn(**{k: [item[k] for item in items] for k in self._keywords})

"""The `@batched` decorator: a vectorised method, served one request at a time on the wire.

The contributor writes the method over a batch, a list per parameter with one item per
request, and returns a list with one result per request, in order:

    @modelwire.batched(max_batch_size=64)
    def classify(flowers: list[Flower]) -> list[Species]: ...

    def score(a: list[float], b: list[int]) -> list[str]: ...   # batched too: a list
                                                                # per parameter, same length

The schema (and so the proto, the stubs, `connect()`, the HTTP face and blueprints) is
the per-request method `Classify(Flower) -> Species`; the runtime gathers concurrent
calls into batches (`modelwire.runtime.batching`). This module only records the policy
and gives the per-request call; it knows nothing of serving.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

__all__ = ["BatchPolicy", "BatchedMethod", "batched"]


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How the runtime gathers calls of one batched method.

    Attributes:
        max_batch_size: the most calls one batch holds.
        max_delay_ms: how long a batch waits for more calls once its first one is
            queued; 0 runs it as soon as the model is free.
    """

    max_batch_size: int = 64
    max_delay_ms: float = 0.0

    def __post_init__(self) -> None:
        size = self.max_batch_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"max_batch_size must be an integer, got {size!r}")
        if size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {size}")
        delay = self.max_delay_ms
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise TypeError(f"max_delay_ms must be a number of milliseconds, got {delay!r}")
        if not math.isfinite(delay) or delay < 0:
            raise ValueError(f"max_delay_ms must be a finite number >= 0, got {delay}")

    def describe(self) -> str:
        """'batches of up to 64 calls, run as soon as the model is free' (for logs)."""
        when = (
            "run as soon as the model is free"
            if self.max_delay_ms == 0
            else f"waiting up to {self.max_delay_ms:g} ms for more"
        )
        return f"batches of up to {self.max_batch_size} calls, {when}"


class BatchedMethod:
    """A batch function with its policy; calling it runs one request as a batch of one.

    Attributes:
        batch: the contributor's function over lists (one list per parameter).
        policy: how the runtime gathers calls.

    Example:
        >>> @batched(max_batch_size=8)
        ... def double(xs: list[float]) -> list[float]:
        ...     return [2 * x for x in xs]
        >>> double(1.5), double.batch([1.0, 2.0])
        (3.0, [2.0, 4.0])
    """

    __name__: str

    def __init__(self, batch: Callable[..., Any], policy: BatchPolicy) -> None:
        if not callable(batch):
            raise TypeError(f"@batched decorates a function, got {batch!r}")
        if isinstance(batch, BatchedMethod):
            raise TypeError(f"{batch.__name__!r} is @batched already")
        self.batch = batch
        self.policy = policy
        # __wrapped__, __name__, __doc__, __module__: source and docs are the function's
        functools.update_wrapper(self, batch)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """One request: each argument as a batch of one, the only result returned."""
        bound = inspect.signature(self.batch).bind(*args, **kwargs)
        results = self.batch(**{name: [value] for name, value in bound.arguments.items()})
        try:
            items = list(results)
        except TypeError:
            raise TypeError(
                f"{self.__name__}: the batch function returned {type(results).__name__}, "
                "not a list of results"
            ) from None
        if len(items) != 1:
            raise ValueError(
                f"{self.__name__}: the batch function returned {len(items)} results for 1 request"
            )
        return items[0]

    def __repr__(self) -> str:
        p = self.policy
        return (
            f"batched({self.__name__}, max_batch_size={p.max_batch_size}, "
            f"max_delay_ms={p.max_delay_ms:g})"
        )


@overload
def batched(fn: Callable[..., Any], /) -> BatchedMethod: ...


@overload
def batched(
    *, max_batch_size: int = 64, max_delay_ms: float = 0
) -> Callable[[Callable[..., Any]], BatchedMethod]: ...


def batched(
    fn: Callable[..., Any] | None = None, /, *, max_batch_size: int = 64, max_delay_ms: float = 0
) -> BatchedMethod | Callable[[Callable[..., Any]], BatchedMethod]:
    """Mark a method as batched: it takes a list per parameter and returns a list.

    Args:
        fn: the batch function, when used bare (`@batched`).
        max_batch_size: the most requests one call of the function gets.
        max_delay_ms: how long the runtime waits for more requests once one is queued
            (0: none; a call that finds the model idle runs at once).

    Returns:
        A `BatchedMethod` (or a decorator making one): give it to `Model(...)`. Its
        annotations are checked there, so that the error names the method.

    Raises:
        TypeError, ValueError: the policy's values are not valid.

    Example:
        >>> @batched(max_batch_size=64)
        ... def classify(flowers: list[float]) -> list[int]:
        ...     return [int(f > 1.0) for f in flowers]
    """
    policy = BatchPolicy(max_batch_size, max_delay_ms)
    if fn is not None:
        return BatchedMethod(fn, policy)
    return functools.partial(BatchedMethod, policy=policy)

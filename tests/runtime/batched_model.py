"""A batched model for the batching tests: each answer says how big its batch was, and every
run of a batch function can be written to a file, so a test sees the batches that formed."""

from __future__ import annotations

import time
from typing import NamedTuple

from modelwire import Model, batched


class Flower(NamedTuple):
    x: float
    hold: float  # seconds the batch sleeps before answering (the batch's longest)
    log: str  # a file that every run of the batch appends its xs to, one line a run


class Answer(NamedTuple):
    y: float
    batch: int  # the size of the batch it was answered from


@batched(max_batch_size=4)
def double(flowers: list[Flower]) -> list[Answer]:
    """Twice each x. A negative x is refused (ValueError), 13 is not in the table
    (LookupError): either fails the whole batch, as a vectorised model would."""
    for path in sorted({f.log for f in flowers if f.log}):
        with open(path, "a") as out:
            out.write(" ".join(f"{f.x:g}" for f in flowers) + "\n")
    hold = max(f.hold for f in flowers)
    if hold > 0:
        time.sleep(hold)
    for f in flowers:
        if f.x < 0:
            raise ValueError(f"x must not be negative, got {f.x:g}")
        if f.x == 13:
            raise LookupError(f"no entry {f.x:g} in the table")
    return [Answer(2 * f.x, len(flowers)) for f in flowers]


@batched(max_batch_size=8)
def drop_one(xs: list[float]) -> list[float]:
    """A broken batch function: one result too few."""
    return [2 * x for x in xs[1:]]


@batched(max_batch_size=8)
def add(a: list[float], b: list[int]) -> list[float]:
    """Several parameters batch as one list each, all of the batch's length."""
    return [x + y for x, y in zip(a, b, strict=True)]


def plain(x: float) -> float:
    """Not batched: served one call at a time, as always."""
    return x + 1


def model() -> Model:
    return Model(double=double, drop_one=drop_one, add=add, plain=plain)

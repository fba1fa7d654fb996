"""How the batching tests make batches form over a real server: a first call holds the model
busy (`hold_model`), the calls under test arrive meanwhile, and `runs` reads back from the
model's log file the batches that ran."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelwire.runtime.client import RemoteModel
from tests.runtime.batched_model import Flower
from tests.runtime.serving import wait_for

HOLD = 1.5  # seconds the first call keeps the model busy; the others must arrive meanwhile


def runs(log: Path) -> list[list[str]]:
    """The batches the model ran, in order, each as its xs (sorted: arrival order varies)."""
    if not log.exists():
        return []
    return [sorted(line.split(), key=float) for line in log.read_text().splitlines()]


def hold_model(pool: ThreadPoolExecutor, client: RemoteModel, log: Path) -> Future[Any]:
    """A call that keeps the model busy for HOLD s; returns once its batch has started."""
    first = pool.submit(client.double, Flower(0.0, HOLD, str(log)))
    wait_for(lambda: len(runs(log)) >= 1, 30, "the holding call to start")
    return first

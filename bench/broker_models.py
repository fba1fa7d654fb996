"""The trivial models of bench/broker.py, dumped as modelwire bundles.

    .venv/bin/python bench/broker_models.py OUTDIR     # writes OUTDIR/<bundle> for each

- `add1`    add1(value: int) -> int                      (a) one link of the 3-step chain
- `slow`    slow(value: int) -> int, sleeps 20 ms        (b) one parallel branch
- `join3`   join3(a: int, b: int, c: int) -> int          (b) the fan-in step
- `scale64` scale64(x: Tensor<float32>, scale: float) -> Scaled64{x, scale: double}
- `scale32` scale32(x: Tensor<float32>, scale: float) -> Scaled32{x, scale: float}
- `take`    take(x: Tensor<float32>, scale: float) -> Scaled64   (c) the second step

`add1`'s request {int64 value = 1} and its response {int64 value = 1} are
wire-identical, so a chain of them is forwarded as bytes. In (c), `scale64 -> take`
is wire-identical (double -> double), `scale32 -> take` is assignable but not
(float -> double widening): the broker must transcode the 4 MB message by name.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from modelwire import Model, dump

BRANCH_SECONDS = 0.02


def add1(value: int) -> int:
    """Add 1."""
    return value + 1


def slow(value: int) -> int:
    """Sleep 20 ms, then add 1."""
    time.sleep(BRANCH_SECONDS)
    return value + 1


def join3(a: int, b: int, c: int) -> int:
    """The fan-in: sum of the three branches."""
    return a + b + c


class Scaled64(NamedTuple):
    x: NDArray[np.float32]
    scale: float  # double


class Scaled32(NamedTuple):
    x: NDArray[np.float32]
    scale: np.float32  # float


def scale64(x: NDArray[np.float32], scale: float) -> Scaled64:
    """Pass the tensor through; scale as a double."""
    return Scaled64(x, scale)


def scale32(x: NDArray[np.float32], scale: float) -> Scaled32:
    """Pass the tensor through; scale as a float (not wire-identical to a double)."""
    return Scaled32(x, np.float32(scale))


def take(x: NDArray[np.float32], scale: float) -> Scaled64:
    """The second step of (c): pass the tensor through."""
    return Scaled64(x, scale)


BUNDLES = {
    "add1": Model(add1=add1),
    "slow": Model(slow=slow),
    "join3": Model(join3=join3),
    "scale64": Model(scale64=scale64),
    "scale32": Model(scale32=scale32),
    "take": Model(take=take),
}


def dump_all(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, model in BUNDLES.items():
        paths[name] = Path(dump(model, name, out / name, description=f"bench/broker.py {name}"))
    return paths


if __name__ == "__main__":
    for name, path in dump_all(Path(sys.argv[1])).items():
        print(f"{name}: {path}")

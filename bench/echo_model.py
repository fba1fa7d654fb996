"""The Tensor echo model of scenario (b), dumped as a modelwire bundle.

.venv/bin/python bench/echo_model.py OUTDIR
"""

from __future__ import annotations

import sys

import numpy as np
from numpy.typing import NDArray

from modelwire import Model, dump


def echo(x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Return the array unchanged."""
    return x


model = Model(echo=echo)

if __name__ == "__main__":
    print(f"wrote {dump(model, 'echo', sys.argv[1], description='4 MB Tensor echo (bench)')}")

"""A CPU-bound model for bench/replicas.py: pure-Python arithmetic that holds the GIL,
so one `modelwire serve` process uses at most one core, dumped as a modelwire bundle.

.venv/bin/python bench/cpu_model.py OUTDIR
"""

from __future__ import annotations

import sys

from modelwire import Model, dump


def burn(rounds: int) -> int:
    """Sum of i*i mod 7 for i below `rounds` (about 1 ms of CPU per 20,000 rounds)."""
    total = 0
    for i in range(rounds):
        total += i * i % 7
    return total


model = Model(burn=burn)

if __name__ == "__main__":
    print(f"wrote {dump(model, 'cpu', sys.argv[1], description='CPU-bound model (bench)')}")

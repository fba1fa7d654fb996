"""Progress of long commands on stderr: tqdm bars on a terminal, no bar off one.

tqdm draws the bars (sizes with units, rate, time left, redrawn in place) and turns
itself off when stderr is not a terminal (`disable=None`), so logs and CI get no bar
noise. An image build's progress lines stay plain lines off a terminal, one per line
as before: there they are the build's log.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from typing import Never

    from tqdm import tqdm

__all__ = ["build_progress", "transfer"]

# what the Docker engine's (classic) builder streams as each step starts
_STEP = re.compile(r"Step (\d+)/(\d+) : (.*)")


def _bar(**options: Any) -> tqdm[Never]:
    """A tqdm bar on stderr, off unless stderr is a terminal, as wide as the terminal.

    A terminal that reports no size (a pty nobody sized) counts as 80x24: tqdm would
    trim every line to nothing, or hide the bar as below the last row.
    """
    from tqdm import tqdm

    try:
        sized = min(os.get_terminal_size(sys.stderr.fileno())) > 0
    except (OSError, ValueError):  # not a terminal (tqdm turns itself off), or no fd
        sized = True
    if not sized:
        options.update(ncols=80, nrows=24)
    return tqdm(file=sys.stderr, disable=None, dynamic_ncols=sized, **options)


@contextlib.contextmanager
def transfer(label: str) -> Iterator[Callable[[int, int], None]]:
    """A `progress(done, total)` callback (bytes) drawing one bar named `label`.

    The bar ends where the transfer did: a push the catalog answered early stops
    short of 100%.
    """
    bar = _bar(desc=label, unit="B", unit_scale=True)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


class _Build:
    """Image build lines: on a terminal Docker's steps move a bar, other lines print."""

    def __init__(self) -> None:
        self.on_terminal = sys.stderr.isatty()
        self.bar: tqdm[Never] | None = None

    def __call__(self, line: str) -> None:
        found = _STEP.match(line)
        if found is not None and self.on_terminal:
            self._step(int(found.group(1)), int(found.group(2)), found.group(3))
            return
        # only a build's steps come while it runs: any other line means it went through
        self.finish()
        click.echo(f"  {line}", err=True)

    def _step(self, step: int, steps: int, what: str) -> None:
        if self.bar is not None and (step <= self.bar.n or steps != self.bar.total):
            self.finish()  # the next image's build started: the last one went through
        bar = self.bar
        if bar is None:
            bar = _bar(
                total=steps,
                desc="  step",
                unit="step",
                mininterval=0,  # a step is an event: draw each one
                bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {elapsed}{postfix}",
            )
            self.bar = bar
        bar.set_postfix_str(what, refresh=False)
        bar.update(step - bar.n)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str("done", refresh=False)
            self.bar.close()
            self.bar = None

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.close()  # as far as it got
            self.bar = None


@contextlib.contextmanager
def build_progress() -> Iterator[Callable[[str], None]]:
    """A `progress(line)` callback for image builds and exports (containers.images.Progress).

    On a terminal each build is a bar over its steps that names the step running;
    the other lines (pulling the base, downloading wheels) print as lines between the
    builds. Off a terminal every line prints as it comes, indented, as the build's log.
    """
    build = _Build()
    try:
        yield build
    except BaseException:
        build.stop()
        raise
    build.finish()

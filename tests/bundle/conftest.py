"""Bundle tests load bundles in this process and serve them from others; nothing may leak."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ServeProcess


@pytest.fixture(autouse=True)
def restore_import_state() -> Iterator[None]:
    """`load()` puts a bundle's code/ on sys.path; the CLI imports model files from tmp dirs."""
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = path
    tmp = tempfile.gettempdir()
    for name in set(sys.modules) - modules:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(tmp):
            del sys.modules[name]


@pytest.fixture
def serve_bundle() -> Iterator[Callable[..., ServeProcess]]:
    """serve_bundle(path, *args) -> a `modelwire serve` subprocess, stopped after the test."""
    procs: list[ServeProcess] = []

    def start(bundle: str | Path, *args: str, **kwargs: Any) -> ServeProcess:
        proc = ServeProcess(str(bundle), *args, **kwargs)
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.close()

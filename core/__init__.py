"""modelwire: typed Python models as gRPC microservices, shared and composed.

The root package stays light: importing it loads no component. The public API
(`Model`, `batched`, `dump`, `load`, `connect`, `push`, `create_namedtuple`) is resolved
lazily on first attribute access, so `import modelwire.errors` costs nothing extra.

Example:
    >>> from modelwire import Model, dump
    >>> def double(x: float) -> float:
    ...     return 2 * x
    >>> dump(Model(double=double), "doubler", "build/doubler")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Model",
    "__version__",
    "batched",
    "connect",
    "create_namedtuple",
    "dump",
    "load",
    "push",
]

_LAZY = {
    "Model": "modelwire.bundle.model",
    "batched": "modelwire.bundle.batching",
    "create_namedtuple": "modelwire.bundle.model",
    "dump": "modelwire.bundle.writer",
    "load": "modelwire.bundle.reader",
    "connect": "modelwire.runtime.client",
    "push": "modelwire.catalog.client",
}

if TYPE_CHECKING:
    from modelwire.bundle import dump, load
    from modelwire.bundle.batching import batched
    from modelwire.bundle.model import Model, create_namedtuple
    from modelwire.catalog.client import push
    from modelwire.runtime.client import connect


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelwire' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

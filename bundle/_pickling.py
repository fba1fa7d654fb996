"""Pickling a model with cloudpickle, reproducibly, noting the modules it reaches.

Two dumps of the same model give the same bytes: sets are written sorted and
classes pickled by value get tracker ids derived from their definition. The
modules met while pickling are what requirement inference starts from.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import sys
from typing import Any

__all__ = ["ModelPickler"]

# the logger these lines had before bundle.py was split; log filters may name it
logger = logging.getLogger("modelwire.bundle")


class ModelPickler:
    """cloudpickle, noting the module of every object it reaches, in a reproducible order.

    The C pickler writes a set in iteration order, which for strings depends on
    the hash seed, so two processes would write different bytes for the same
    model. When the model holds a set (a global like ``STOP = {"a", "the"}``, or
    the frozenset constant Python compiles ``w in {"a", "the"}`` into), it is
    pickled again with the pure-Python pickler, which writes sets sorted.
    """

    def __init__(self) -> None:
        import cloudpickle

        seen: set[str] = set()
        self.modules = seen
        base = cloudpickle.Pickler

        class Recording(base):  # type: ignore[misc, valid-type]
            met_set = False

            def reducer_override(self, obj: Any) -> Any:
                if isinstance(obj, type(sys)):
                    seen.add(obj.__name__)
                else:
                    mod = getattr(obj, "__module__", None)
                    if isinstance(mod, str):
                        seen.add(mod)
                    seen.add(type(obj).__module__)
                    if isinstance(obj, type):
                        _pin_tracker_id(obj)
                return super().reducer_override(obj)

            # called for every object, sets included (reducer_override is not)
            def persistent_id(self, obj: Any) -> None:
                if type(obj) in (set, frozenset) and len(obj) > 1:
                    self.met_set = True

        self._cls = Recording

    def dumps(self, obj: Any) -> bytes:
        buf = io.BytesIO()
        pickler = self._cls(buf, protocol=5)
        pickler.dump(obj)
        if not pickler.met_set:
            return buf.getvalue()
        ordered = io.BytesIO()
        try:
            _OrderedPickler(ordered).dump(obj)
        except Exception as exc:  # the C pickler's output is as good, only not reproducible
            logger.warning("the bundle will not be byte-reproducible: %r", exc)
            return buf.getvalue()
        return ordered.getvalue()


def _sorted_items(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=lambda x: (type(x).__module__, type(x).__qualname__, repr(x)))


# typeshed describes little of the pure-Python pickler this class builds on
_PurePickler: Any = pickle._Pickler


class _OrderedPickler(_PurePickler):  # type: ignore[misc]
    """The pure-Python pickler with cloudpickle's reducers; sets are written sorted."""

    dispatch = _PurePickler.dispatch.copy()

    def __init__(self, file: io.BytesIO) -> None:
        import cloudpickle

        super().__init__(file, protocol=5)
        self.dispatch_table = cloudpickle.Pickler.dispatch_table
        # one cloudpickle pickler per dump: it maps shared function globals
        self._cloud = cloudpickle.Pickler(io.BytesIO(), protocol=5)

    def reducer_override(self, obj: Any) -> Any:
        return self._cloud.reducer_override(obj)

    def save_set(self, obj: set[Any]) -> None:  # protocol 4+, as pickle._Pickler.save_set
        self.write(pickle.EMPTY_SET)
        self.memoize(obj)
        items = _sorted_items(obj)
        for start in range(0, len(items), 1000):
            self.write(pickle.MARK)
            for item in items[start : start + 1000]:
                self.save(item)
            self.write(pickle.ADDITEMS)

    def save_frozenset(self, obj: frozenset[Any]) -> None:  # as pickle._Pickler.save_frozenset
        self.write(pickle.MARK)
        for item in _sorted_items(obj):
            self.save(item)
        if id(obj) in self.memo:
            self.write(pickle.POP_MARK + self.get(self.memo[id(obj)][0]))
            return
        self.write(pickle.FROZENSET)
        self.memoize(obj)

    dispatch[set] = save_set
    dispatch[frozenset] = save_frozenset


def _pin_tracker_id(cls: type) -> None:
    """Give a class pickled by value a tracker id derived from its definition.

    cloudpickle tags such classes with a random uuid4, which would make two dumps
    of the same model differ; an id from the class's module, name and attribute
    names is stable across processes.
    """
    import cloudpickle.cloudpickle as cp

    by_class = getattr(cp, "_DYNAMIC_CLASS_TRACKER_BY_CLASS", None)
    by_id = getattr(cp, "_DYNAMIC_CLASS_TRACKER_BY_ID", None)
    lock = getattr(cp, "_DYNAMIC_CLASS_TRACKER_LOCK", None)
    if by_class is None or by_id is None or lock is None:
        return
    if getattr(cp, "_should_pickle_by_reference", lambda c: True)(cls):
        return
    ident = repr((cls.__module__, cls.__qualname__, sorted(vars(cls))))
    tracker = hashlib.sha256(ident.encode()).hexdigest()[:32]
    with lock:
        if cls in by_class:
            return
        if by_id.get(tracker) is not None:
            return
        by_class[cls] = tracker
        by_id[tracker] = cls

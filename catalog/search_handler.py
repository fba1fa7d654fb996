"""The SearchModels handler: the candidates `search.find` narrows in SQL, kept when their
types fit.

With `accepts` (a method whose response the candidate must take) or `produces` (a
method whose request the candidate must feed), the field-name pre-filter of `find`
is followed by the real assignability check (`modelwire.codegen.compat`) on each
candidate's methods, in pages of 64, stopping once the limit is reached. Without
either, the first hits are the answer. Only the newest fitting version of each
name is kept unless `all_versions` asks for every one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from modelwire.catalog.api import CatalogMessages
from modelwire.catalog.records import ModelRow, fields_of
from modelwire.catalog.schemas import SchemaCache
from modelwire.catalog.search import Hit, find
from modelwire.catalog.store import Store
from modelwire.catalog.validations import statuses
from modelwire.codegen.compat import Typed, assignable
from modelwire.codegen.schema import MessageType, Method, ModelSchema, OptionalType
from modelwire.errors import NotFound

__all__ = ["MAX_LIMIT", "SearchHandler"]

MAX_LIMIT = 10_000  # the most versions one search answers
_PAGE = 64  # candidates type-checked at a time


class SearchHandler:
    """Answers searches over a `Store`.

    Args:
        store: what is searched.
        pb: the catalog API's message classes.
        schemas: the schemas of stored versions (for the type checks).
        summary: a stored version, with its validation status, as the ModelSummary
            message the reply lists.
    """

    def __init__(
        self,
        store: Store,
        pb: CatalogMessages,
        schemas: SchemaCache,
        summary: Callable[[ModelRow, str], Any],
    ) -> None:
        self.store = store
        self.pb = pb
        self.schemas = schemas
        self.summary = summary

    def search(self, request: Any, viewer: int) -> Any:
        """The SearchModelsResponse to `request`, as `viewer` may see it."""
        limit = min(int(request.limit), MAX_LIMIT) if request.limit > 0 else 100
        produced: Typed | None = None  # --accepts: what the candidate must take
        wanted: Typed | None = None  # --produces: what the candidate must give
        accepting = producing = None
        if request.HasField("accepts"):
            schema, m = self._method_ref(request.accepts, viewer)
            produced = Typed(schema, MessageType(m.response))
            accepting = _field_names(schema, m.response, required_only=False)
        if request.HasField("produces"):
            schema, m = self._method_ref(request.produces, viewer)
            wanted = Typed(schema, MessageType(m.request))
            producing = _field_names(schema, m.request, required_only=True)
        found: list[Hit] = []
        typed = produced is not None or wanted is not None
        pending: list[Hit] = []

        def settle() -> bool:
            """Check the pending hits in order; whether the answer is complete."""
            schemas = self.schemas.many([h.id for h in pending]) if typed else {}
            for hit in pending:
                if not request.all_versions and found and found[-1].name == hit.name:
                    continue  # a newer version of this name is already in
                if typed and not _fits(schemas[hit.id], hit.methods, produced, wanted):
                    continue
                found.append(hit)
                if len(found) >= limit:
                    return True
            pending.clear()
            return False

        hits = find(
            self.store,
            viewer,
            text=request.text,
            category=request.category,
            tags=list(request.tags),
            accepting=accepting,
            producing=producing,
            validated=request.validated,
        )
        with contextlib.closing(hits):
            for hit in hits:
                if not request.all_versions and (
                    (found and found[-1].name == hit.name)
                    or (pending and pending[-1].name == hit.name and not typed)
                ):
                    continue
                pending.append(hit)
                # untyped, every pending hit is kept: settle once the limit is reached
                if len(pending) >= (_PAGE if typed else limit - len(found)) and settle():
                    break
            else:
                settle()
        rows = self.store.rows([h.id for h in found])
        status = statuses(self.store.db, list(rows))
        return self.pb.get("SearchModelsResponse")(
            models=[self.summary(rows[h.id], status[h.id]) for h in found if h.id in rows]
        )

    def _method_ref(self, ref: Any, viewer: int) -> tuple[ModelSchema, Method]:
        row = self.store.get(ref.model, ref.version or None, viewer)
        schema = self.schemas.of(row)
        try:
            return schema, schema.method(ref.method)
        except KeyError:
            names = ", ".join(m.name for m in schema.methods)
            raise NotFound(
                f"{row.name}:{row.version} has no method {ref.method!r} (it has {names})",
                subject=f"{row.name}:{row.version}.{ref.method}",
            ) from None


def _field_names(schema: ModelSchema, message: str, *, required_only: bool) -> set[str]:
    return {
        f.name
        for f in fields_of(schema, message)
        if not (required_only and isinstance(f.type, OptionalType))
    }


def _fits(
    schema: ModelSchema,
    methods: tuple[str, ...],
    produced: Typed | None,
    wanted: Typed | None,
) -> bool:
    """Whether one of `methods` takes `produced` and gives `wanted` (where given)."""
    for name in methods:
        m = schema.method(name)
        if produced is not None and assignable(produced, Typed(schema, MessageType(m.request))):
            continue
        if wanted is not None and assignable(Typed(schema, MessageType(m.response)), wanted):
            continue
        return True
    return False

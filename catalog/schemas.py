"""The parsed schemas of stored versions, cached: a version's manifest never changes.

The type checks of a push (against the version before it) and of a type search
(over every candidate) read schemas by version id; each is parsed from its
manifest once, and the ones not cached yet are read in one query.
"""

from __future__ import annotations

import json

from modelwire.catalog.records import ModelRow
from modelwire.catalog.store import Store
from modelwire.codegen.schema import ModelSchema

__all__ = ["SCHEMA_CACHE", "SchemaCache"]

SCHEMA_CACHE = 20_000  # parsed schemas kept (a few KB each)


class SchemaCache:
    """Schemas of a store's versions by id, parsed on first use.

    Args:
        store: where the manifests are.
        limit: the most schemas kept; the cache starts afresh beyond.
    """

    def __init__(self, store: Store, *, limit: int = SCHEMA_CACHE) -> None:
        self.store = store
        self.limit = limit
        self._schemas: dict[int, ModelSchema] = {}

    def of(self, row: ModelRow) -> ModelSchema:
        """The version's schema."""
        return self.many([row.id])[row.id]

    def many(self, ids: list[int]) -> dict[int, ModelSchema]:
        """Schemas of these versions (those that exist): from the cache, the others read in
        one query."""
        found = {i: self._schemas[i] for i in ids if i in self._schemas}
        for model_id, text in self.store.schemas_json([i for i in ids if i not in found]).items():
            if len(self._schemas) >= self.limit:
                self._schemas.clear()  # what this call found stays in `found`
            found[model_id] = self._schemas[model_id] = ModelSchema.from_json(json.loads(text))
        return {i: found[i] for i in ids if i in found}

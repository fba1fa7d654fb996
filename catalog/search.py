"""Search over a `Store`: text, category, tags, validation, and the type pre-filters.

`find` turns the criteria into one SQL query over narrow (id, name) rows ordered
by name and newest version (the `models_by_name` index), so that a caller
reading only a page stops early and never sorts manifests. The type criteria
are pre-filters by field name, exact for what they check:

- `accepting`: a method qualifies when its *required* request fields are all
  among the producer's field names. Every subset of those names is looked up
  in the index of each method's `required_key` (up to `MAX_SUBSET_FIELDS`
  names; beyond, a GROUP BY over the field index does the same).
- `producing`: a method qualifies when its response has every one of the
  consumer's required field names.

The assignability check itself (types, cardinality, widening) is the caller's:
it runs on the candidates only (`modelwire.catalog.search_handler`).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from typing import Any, NamedTuple

from modelwire.catalog.records import FIELD_SEP
from modelwire.catalog.store import Store

__all__ = ["MAX_SUBSET_FIELDS", "Hit", "find"]

# up to this many producer fields, `accepting` looks up every subset (2**n keys)
MAX_SUBSET_FIELDS = 10


class Hit(NamedTuple):
    """A version a search found: its id, its name, and the methods that passed its type
    criteria (empty without any)."""

    id: int
    name: str
    methods: tuple[str, ...]


def find(
    store: Store,
    viewer: int,
    *,
    text: str = "",
    category: str = "",
    tags: Sequence[str] = (),
    accepting: set[str] | None = None,
    producing: set[str] | None = None,
    validated: bool = False,
) -> Generator[Hit, None, None]:
    """Visible versions matching every criterion, by name, newest version first.

    `accepting`: only versions with a method whose *required* request fields
    all appear in that set of field names (a cheap pre-filter for the
    assignability check: a producer can only feed a request whose required
    fields it has). `producing`: only versions with a method whose response
    has every field of that set. With either, each hit comes with the
    methods that passed; otherwise with none. `validated`: only versions whose
    validation passed.

    Hits are produced lazily and are narrow (the sort never carries a
    manifest); `rows()` fetches the versions a caller keeps.
    """
    where = ["(m.published = 1 OR m.owner = ?)"]
    args: list[Any] = [viewer]
    ctes: list[str] = []
    cte_args: list[Any] = []
    long_words, short_words = _words(text)
    if long_words:
        where.append("m.id IN (SELECT rowid FROM models_fts WHERE models_fts MATCH ?)")
        args.append(" AND ".join('"' + w.replace('"', '""') + '"' for w in long_words))
    for word in short_words:  # too short for the trigram index: a substring test
        where.append(
            "(instr(lower(m.name), ?) OR instr(lower(m.description), ?) OR instr(lower(m.tags), ?))"
        )
        args.extend([word, word, word])
    if category:
        where.append("m.category = ?")
        args.append(category)
    for tag in tags:
        where.append("m.id IN (SELECT model FROM model_tags WHERE tag = ?)")
        args.append(tag)
    if validated:
        where.append("m.id IN (SELECT model FROM validations WHERE status = 'passed')")
    typed: list[str] = []
    if accepting is not None:
        if len(accepting) <= MAX_SUBSET_FIELDS:
            # required fields a subset of `accepting`: look every subset up by its key
            keys = _subset_keys(accepting)
            ctes.append(
                "acc(model, method) AS (SELECT model, method FROM methods"
                f" WHERE required_key IN ({','.join('?' * len(keys))}))"
            )
            cte_args.extend(keys)
        else:
            marks = ",".join("?" * len(accepting))
            ctes.append(
                "acc(model, method) AS ("
                " SELECT model, method FROM methods WHERE required_key = ''"
                " UNION"
                " SELECT f.model, f.method FROM method_fields f JOIN methods x"
                "  ON x.model = f.model AND x.method = f.method"
                f" WHERE f.side = 'request' AND f.required = 1 AND f.field IN ({marks})"
                "  GROUP BY f.model, f.method"
                "  HAVING COUNT(DISTINCT f.field) = MAX(x.required_request_fields))"
            )
            cte_args.extend(sorted(accepting))
        typed.append("acc")
    if producing is not None:
        if producing:
            # methods with the first field, probed for each of the others
            first_field, *others = sorted(producing)
            probes = "".join(
                " AND EXISTS (SELECT 1 FROM method_fields g WHERE g.model = f.model AND"
                " g.method = f.method AND g.side = 'response' AND g.field = ?)"
                for _ in others
            )
            ctes.append(
                "prod(model, method) AS (SELECT DISTINCT f.model, f.method"
                " FROM method_fields f WHERE f.side = 'response' AND f.field = ?"
                f"{probes})"
            )
            cte_args.extend([first_field, *others])
        else:
            ctes.append("prod(model, method) AS (SELECT model, method FROM methods)")
        typed.append("prod")
    if typed:
        # a method must pass every type criterion; keep the methods that did
        first, *rest = typed
        join = " ".join(
            f"JOIN {t} ON {t}.model = {first}.model AND {t}.method = {first}.method" for t in rest
        )
        ctes.append(
            f"cand(model, methods) AS (SELECT {first}.model,"
            f" group_concat({first}.method, char(31)) FROM {first} {join}"  # FIELD_SEP
            f" GROUP BY {first}.model)"
        )
        select = "SELECT m.id, m.name, cand.methods FROM models m"
        select += " JOIN cand ON cand.model = m.id"
    else:
        select = "SELECT m.id, m.name, '' FROM models m"
    with_ = "WITH " + ", ".join(ctes) + " " if ctes else ""
    sql = f"{with_}{select} WHERE {' AND '.join(where)} ORDER BY m.name, m.vkey DESC"
    cursor = store.connection().execute(sql, [*cte_args, *args])
    try:
        while batch := cursor.fetchmany(256):
            for model_id, name, methods in batch:
                yield Hit(model_id, name, tuple(methods.split(FIELD_SEP)) if methods else ())
    finally:
        cursor.close()


def _subset_keys(fields: set[str]) -> list[str]:
    """The `required_key` of every subset of `fields` (the empty one included)."""
    ordered = sorted(fields)
    return [
        FIELD_SEP.join(f for i, f in enumerate(ordered) if mask >> i & 1)
        for mask in range(1 << len(ordered))
    ]


def _words(text: str) -> tuple[list[str], list[str]]:
    """The words of a search, all required: (three characters or more, shorter).

    The trigram tokenizer matches any substring of three characters or more, so
    `forest` finds "RandomForest"; shorter words cannot use the index and are
    tested as plain substrings.
    """
    words = re.findall(r"[\w-]+", text.lower())
    return [w for w in words if len(w) >= 3], [w for w in words if len(w) < 3]

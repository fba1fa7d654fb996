"""The validation queue as the catalog's database keeps it (`modelwire.catalog.validations`):
on a real store, with real pushes' rows, and no validator running."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelwire.catalog import validations as v
from modelwire.catalog.store import Store
from tests.catalog.helpers import Catalog


def _store_with(catalog: Catalog, bundles: dict[str, Path], *names: str) -> tuple[Store, list[int]]:
    token = catalog.user("alice")
    with catalog.client(token) as client:
        for name in names:
            client.push(bundles[name])
    store = catalog.running.store
    ids = [r[0] for r in store.connection().execute("SELECT id FROM models ORDER BY id")]
    return store, ids


def test_a_version_no_validating_catalog_queued_is_unvalidated(
    catalog: Catalog, bundles: dict[str, Path]
):
    store, ids = _store_with(catalog, bundles, "tokenizer", "summarizer")
    assert v.statuses(store.db, ids) == dict.fromkeys(ids, "unvalidated")
    assert v.status_of(store.db, ids[0]).status == "unvalidated"
    with catalog.client(catalog.user("bob")) as client:
        assert client.search(all_versions=True) == []  # private to alice


def test_jobs_are_claimed_oldest_first_and_by_one_claimer_at_a_time(
    catalog: Catalog, bundles: dict[str, Path]
):
    store, ids = _store_with(catalog, bundles, "tokenizer", "summarizer", "translator")
    assert v.queue_unlooked(store.db) == 3
    assert v.queue_unlooked(store.db) == 0
    first = v.claim_next(store.db, "1:a", 0.0)
    second = v.claim_next(store.db, "2:b", 0.0)
    assert (first and first.model, second and second.model) == (ids[0], ids[1])
    status = v.status_of(store.db, ids[2])
    assert (status.status, status.running, status.ahead) == ("pending", False, 2)
    assert first is not None and second is not None
    assert v.finish(store.db, first, "1:a", passed=True, mode="venv", reason="", report="{}")
    # a claim given back to the queue is not the claimer's any more
    v.release(store.db, second, "2:b")
    assert not v.finish(store.db, second, "2:b", passed=True, mode="venv", reason="", report="")
    assert v.statuses(store.db, ids) == {
        ids[0]: "passed",
        ids[1]: "pending",
        ids[2]: "pending",
    }


def test_a_retry_waits_for_its_time_and_counts_the_attempt(
    catalog: Catalog, bundles: dict[str, Path]
):
    store, ids = _store_with(catalog, bundles, "tokenizer")
    v.queue(store.db, ids[0])
    job = v.claim_next(store.db, "1:a", 0.0)
    assert job is not None
    v.retry_later(store.db, job, "1:a", "the validator failed (no engine)", 1000.0)
    assert v.claim_next(store.db, "1:a", 999.0) is None
    assert v.next_retry(store.db) == 1000.0
    again = v.claim_next(store.db, "1:a", 1000.0)
    assert again is not None and again.attempts == 1
    status = v.status_of(store.db, ids[0])
    assert (status.status, status.note, status.attempts) == ("pending", "started", 1)


def test_claims_of_processes_that_are_gone_go_back_to_the_queue(
    catalog: Catalog, bundles: dict[str, Path]
):
    store, ids = _store_with(catalog, bundles, "tokenizer", "summarizer")
    v.queue_unlooked(store.db)
    assert v.claim_next(store.db, "111:dead", 0.0) is not None
    assert v.claim_next(store.db, "222:alive", 0.0) is not None
    assert v.release_dead_claims(store.db, lambda claimer: claimer == "111:dead") == [ids[0]]
    released = v.status_of(store.db, ids[0])
    assert (released.running, released.note) == (
        False,
        "queued again: the catalog running it stopped",
    )
    assert v.status_of(store.db, ids[1]).running
    job = v.claim_next(store.db, "333:new", 0.0)
    assert job is not None and job.model == ids[0]


def test_a_catalog_made_before_validation_gets_the_table_and_its_versions_are_unvalidated(
    tmp_path: Path, bundles: dict[str, Path]
):
    data = tmp_path / "data"
    catalog = Catalog.start(data)
    try:
        with catalog.client(catalog.user("alice")) as client:
            client.push(bundles["tokenizer"])
    finally:
        catalog.stop()
    with sqlite3.connect(data / "catalog.db") as db:  # as the catalog was before
        db.execute("DROP TABLE validations")
    db.close()
    store = Store(data)
    (model,) = [r[0] for r in store.connection().execute("SELECT id FROM models")]
    assert v.status_of(store.db, model).status == "unvalidated"
    assert v.queue_unlooked(store.db) == 1
    assert v.status_of(store.db, model).status == "pending"

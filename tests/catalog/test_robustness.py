"""Uploads that go wrong leave nothing behind: concurrent pushes (threads, and two catalog
processes on one data directory), a client killed mid-push, and a catalog killed mid-push
(bad uploads: test_bad_uploads.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from modelwire.catalog.client import CatalogClient
from modelwire.config import CatalogSettings
from modelwire.errors import ServiceError
from tests.catalog.helpers import (
    ROOT,
    Catalog,
    CatalogProcess,
    Contents,
    contents,
    integrity_problems,
    sha256,
    wait_until,
)
from tests.servers import clean_env

pytestmark = pytest.mark.timeout(90)

MiB = 1024 * 1024
EMPTY = Contents(rows=[], blobs=[], uploads=[])


def _push_all(
    jobs: list[tuple[str, str, Path]],
) -> list[tuple[str, bool | None, str]]:
    """Push every (address, token, bundle) from its own thread at once; per job
    (bundle name, created or None, status name or '')."""
    barrier = threading.Barrier(len(jobs))
    results: list[tuple[str, bool | None, str]] = [("", None, "")] * len(jobs)

    def run(i: int, address: str, token: str, bundle: Path) -> None:
        with CatalogClient(CatalogSettings(address, token)) as client:
            barrier.wait()
            try:
                _, created = client.push(bundle)
                results[i] = (bundle.name, created, "")
            except ServiceError as exc:
                results[i] = (bundle.name, None, exc.status)

    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _check_contested(results: list[tuple[str, bool | None, str]]) -> str:
    """Exactly one variant of contested:1.0.0 won; its pushes succeeded, once with
    created=True; every other variant's push got ALREADY_EXISTS. The winner's file name."""
    contested = [r for r in results if r[0].startswith("contested-")]
    winners = {name for name, _, status in contested if not status}
    assert len(winners) == 1, contested
    winner = winners.pop()
    assert sorted(bool(created) for name, created, _ in contested if name == winner) == [
        False,
        True,
    ]
    assert all(status == "ALREADY_EXISTS" for name, _, status in contested if name != winner), (
        contested
    )
    return winner


def test_concurrent_pushes_from_threads_store_each_version_once(
    catalog: Catalog, bundles: dict[str, Path]
):
    token = catalog.user("alice")
    variants = [bundles[f"contested-{i}"] for i in range(4)]
    others = [bundles[n] for n in ("tokenizer", "summarizer", "translator", "tagger")]
    jobs = [(catalog.address, token, b) for b in [*variants, *variants, *others]]
    results = _push_all(jobs)
    assert [r for r in results if not r[0].startswith("contested-")] == [
        (b.name, True, "") for b in others
    ]
    winner = _check_contested(results)
    state = contents(catalog.data)
    assert [r[:2] for r in state.rows] == [
        ("contested", "1.0.0"),
        ("summarizer", "1.0.0"),
        ("tagger", "1.0.0"),
        ("tokenizer", "1.0.0"),
        ("translator", "1.0.0"),
    ]
    won = next(b for b in variants if b.name == winner)
    assert state.rows[0][2] == sha256(won.read_bytes())
    assert state.blobs == sorted(r[2] for r in state.rows)
    assert state.uploads == []
    assert integrity_problems(catalog.data) == []


def test_two_catalog_processes_on_one_data_directory_agree(
    tmp_path: Path, bundles: dict[str, Path], cli: Callable[..., Result]
):
    data = tmp_path / "shared"
    token = cli("catalog", "user", "add", "alice", "--data", str(data)).stdout.splitlines()[-1]
    first, second = CatalogProcess(data), CatalogProcess(data)
    try:
        variants = [bundles[f"contested-{i}"] for i in range(4)]
        jobs = [
            (server.address, token, bundle) for bundle in variants for server in (first, second)
        ]
        jobs += [(first.address, token, bundles["summarizer"])]
        jobs += [(second.address, token, bundles["tagger"])]
        results = _push_all(jobs)
        _check_contested(results)
        with CatalogClient(CatalogSettings(second.address, token)) as client:
            assert [m.name for m in client.search()] == ["contested", "summarizer", "tagger"]
    finally:
        first.kill()
        second.kill()
    state = contents(data)
    assert len(state.rows) == 3
    assert state.blobs == sorted(r[2] for r in state.rows)
    assert state.uploads == []
    assert integrity_problems(data) == []


def test_a_client_killed_mid_push_leaves_nothing_and_the_next_push_succeeds(
    catalog: Catalog, big_bundle: Path
):
    token = catalog.user("alice")
    pusher = subprocess.Popen(
        [sys.executable, "-m", "tests.catalog.slow_push", catalog.address, token, str(big_bundle)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=clean_env(),
    )
    try:
        assert pusher.stdout is not None
        for _ in range(4):  # a few chunks are on their way
            line = pusher.stdout.readline()
            assert line.startswith("sent "), line + pusher.stderr.read()  # type: ignore[union-attr]
        wait_until(
            lambda: any(p.stat().st_size > 0 for p in (catalog.data / "uploads").iterdir()),
            what="the upload to reach the catalog's disk",
        )
        # while the bytes arrive, the version exists nowhere
        with catalog.client(token) as client, pytest.raises(ServiceError) as info:
            client.show("weights")
        assert info.value.status == "NOT_FOUND"
        assert contents(catalog.data).rows == []
        pusher.kill()
        pusher.wait(10)
    finally:
        if pusher.poll() is None:
            pusher.kill()
            pusher.wait(10)
        for stream in (pusher.stdout, pusher.stderr):
            if stream is not None:
                stream.close()
    wait_until(lambda: contents(catalog.data).uploads == [], what="the upload file to go")
    assert contents(catalog.data) == EMPTY

    with catalog.client(token) as client:
        info2, created = client.push(big_bundle)
    assert (info2.name, created) == ("weights", True)
    state = contents(catalog.data)
    assert state.rows == [("weights", "1.0.0", sha256(big_bundle.read_bytes()), info2.size)]
    assert state.uploads == []
    assert integrity_problems(catalog.data) == []


def test_a_restart_clears_what_a_crash_left_but_not_a_live_upload(
    tmp_path: Path, bundles: dict[str, Path], cli: Callable[..., Result]
):
    """A catalog killed mid-push leaves its upload file; one killed between moving a blob
    into place and committing its row leaves an orphan blob. The next start removes both,
    while an upload another catalog process is receiving right now stays."""
    from modelwire.catalog.store import Store

    data = tmp_path / "data"
    store = Store(data, create=True)
    live = store.begin_upload(limit=MiB, announced=10)
    live.write(b"0123456789")
    (data / "uploads" / "dead.part").write_bytes(b"half a bundle")
    orphan = store.blob_path("ab" * 32)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"never committed")
    server = CatalogProcess(data)
    try:
        assert server.terminate() == 0
    finally:
        server.kill()
    assert contents(data).uploads == [live.path.name]
    assert contents(data).blobs == []
    assert "removed 1 unfinished upload(s) and 1 orphan blob(s) left by a crash" in server.stderr
    live.discard()
    assert contents(data) == EMPTY

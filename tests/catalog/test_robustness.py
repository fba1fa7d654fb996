"""Uploads that go wrong leave nothing behind: concurrent pushes (threads, and two catalog
processes on one data directory), a client killed mid-push, and every kind of bad upload --
each answered with its own status and message."""

from __future__ import annotations

import gc
import io
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
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
    chunk,
    contents,
    header,
    integrity_problems,
    raw_push,
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


# ---------------------------------------------------------------- bad uploads


@pytest.fixture(scope="module")
def small_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Catalog, str]]:
    """A catalog that takes uploads of 1 MiB at most, and a user's token."""
    running = Catalog.start(tmp_path_factory.mktemp("small") / "data", max_upload_mb=1)
    yield running, running.user("bob")
    running.stop()


def _tampered(good: bytes) -> bytes:
    """The bundle zip with model.pkl changed and the manifest left as it was."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data + b"\0" if info.filename == "model.pkl" else data)
    return out.getvalue()


def _bomb() -> bytes:
    """A small zip whose files expand to 9 MiB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("modelwire.json", "{}")
        zf.writestr("model.pkl", b"\0" * 9 * MiB)
    return out.getvalue()


def _cases(good: bytes) -> list[tuple[str, list[bytes], grpc.StatusCode, str]]:
    n, digest = len(good), sha256(good)
    other = sha256(b"other")
    garbage = b"not a zip " * 300
    tampered = _tampered(good)
    bomb = _bomb()
    big = b"x" * (MiB + MiB // 2)
    bad = grpc.StatusCode.INVALID_ARGUMENT
    full = grpc.StatusCode.RESOURCE_EXHAUSTED
    limit = "(modelwire catalog serve --max-upload-mb)"
    return [
        (
            "garbage-chunks",
            [header("tokenizer", "1.0.0", len(garbage), sha256(garbage)), chunk(garbage)],
            bad,
            "the upload is not a valid bundle: it is not a zip file "
            "(push a bundle written by modelwire dump)",
        ),
        (
            "wrong-digest",
            [header("tokenizer", "1.0.0", n, other), chunk(good)],
            bad,
            f"the upload's sha256 is {digest}, the header says {other}; "
            "it was corrupted on the way, push again",
        ),
        (
            "fewer-bytes-than-announced",
            [header("tokenizer", "1.0.0", n + 10, digest), chunk(good)],
            bad,
            f"received {n} bytes, the header announced {n + 10}",
        ),
        (
            "more-bytes-than-announced",
            [header("tokenizer", "1.0.0", n - 10, digest), chunk(good)],
            bad,
            f"the upload is larger than the {n - 10} bytes its header announced",
        ),
        (
            "announced-over-the-limit",
            [header("tokenizer", "1.0.0", 2 * MiB, digest), chunk(good)],
            full,
            f"the bundle is {2 * MiB} bytes, over the catalog's limit of {MiB} bytes {limit}",
        ),
        (
            "sent-over-the-limit",
            [header("tokenizer", "1.0.0", MiB, digest), chunk(big[:MiB]), chunk(big[MiB:])],
            full,
            f"the upload exceeds the catalog's limit of {MiB} bytes {limit}",
        ),
        (
            "malformed-protobuf",
            [header("tokenizer", "1.0.0", n, digest), chunk(good[:100]), b"\x12\x05ab"],
            bad,
            "message 3 of the push is not a valid PushBundleRequest",
        ),
        (
            "not-protobuf-at-all",
            [header("tokenizer", "1.0.0", n, digest), b"\xff\xff\xff"],
            bad,
            "message 2 of the push is not a valid PushBundleRequest",
        ),
        (
            "no-header",
            [chunk(good)],
            bad,
            "the first message of a push must carry the header",
        ),
        ("no-messages", [], bad, "the first message of a push must carry the header"),
        (
            "a-second-header",
            [header("tokenizer", "1.0.0", n, digest), chunk(good[:100]), header("x", "1", 1, "")],
            bad,
            "a push carries one header, in its first message",
        ),
        (
            "header-names-another-model",
            [header("other", "1.0.0", n, digest), chunk(good)],
            bad,
            "the bundle is tokenizer:1.0.0, the header says other:1.0.0",
        ),
        (
            "tampered-bundle",
            [header("tokenizer", "1.0.0", len(tampered), sha256(tampered)), chunk(tampered)],
            bad,
            "the upload is not a valid bundle: file model.pkl does not match its sha256 in "
            "modelwire.json",
        ),
        (
            "zip-bomb",
            [header("tokenizer", "1.0.0", len(bomb), sha256(bomb)), chunk(bomb)],
            full,
            f"the bundle's files add up to {9 * MiB + 2} bytes, over the catalog's limit of "
            f"{8 * MiB} bytes (8 times --max-upload-mb)",
        ),
        (
            "bad-name",
            [header("Bad Name", "1.0.0", n, digest), chunk(good)],
            bad,
            "model name 'Bad Name' must be lower-case letters, digits, '-' or '_', "
            "starting with a letter",
        ),
        (
            "bad-version",
            [header("tokenizer", "one", n, digest), chunk(good)],
            bad,
            "version 'one' must look like 1.2.0 (or 1.2.0-rc1)",
        ),
        (
            "no-size",
            [header("tokenizer", "1.0.0", 0, digest), chunk(good)],
            bad,
            "the header must announce the bundle's size in bytes",
        ),
        (
            "digest-not-hex",
            [header("tokenizer", "1.0.0", n, "xyz"), chunk(good)],
            bad,
            "the header's sha256 'xyz' is not 64 lower-case hex digits",
        ),
    ]


CASE_IDS = [
    "garbage-chunks",
    "wrong-digest",
    "fewer-bytes-than-announced",
    "more-bytes-than-announced",
    "announced-over-the-limit",
    "sent-over-the-limit",
    "malformed-protobuf",
    "not-protobuf-at-all",
    "no-header",
    "no-messages",
    "a-second-header",
    "header-names-another-model",
    "tampered-bundle",
    "zip-bomb",
    "bad-name",
    "bad-version",
    "no-size",
    "digest-not-hex",
]


@pytest.mark.parametrize("case", CASE_IDS)
def test_a_bad_upload_gets_a_clear_error_and_nothing_is_stored(
    small_catalog: tuple[Catalog, str], bundles: dict[str, Path], case: str
):
    catalog, token = small_catalog
    good = bundles["tokenizer.zip"].read_bytes()
    cases = _cases(good)
    assert [c[0] for c in cases] == CASE_IDS
    (_, messages, code, message) = next(c for c in cases if c[0] == case)
    assert raw_push(catalog.address, token, messages) == (code, message)
    assert contents(catalog.data) == EMPTY


def test_the_upload_limit_is_set_on_the_command_line(
    tmp_path: Path, big_bundle: Path, cli: Callable[..., Result]
):
    data = tmp_path / "data"
    token = cli("catalog", "user", "add", "alice", "--data", str(data)).stdout.splitlines()[-1]
    server = CatalogProcess(data, "--max-upload-mb", "4")
    try:
        env = {"MODELWIRE_CATALOG": server.address, "MODELWIRE_TOKEN": token}
        result = cli("push", str(big_bundle), env=env)
        size = big_bundle.stat().st_size
        assert (result.exit_code, result.stderr) == (
            1,
            f"error: {server.address} PushBundle: RESOURCE_EXHAUSTED: the bundle is {size} "
            f"bytes, over the catalog's limit of {4 * MiB} bytes "
            "(modelwire catalog serve --max-upload-mb)\n",
        )
    finally:
        server.kill()
    assert contents(data) == EMPTY


def test_serving_pushes_leaves_no_reference_cycles(catalog: Catalog, bundles: dict[str, Path]):
    """Nothing a push touches is left to the cyclic garbage collector: protobuf message
    classes rebuilt per request, or a kept exception whose traceback holds the request's
    frames, made a catalog process segfault while collecting them under load."""
    token = catalog.user("alice")
    good = bundles["tokenizer.zip"].read_bytes()
    bad = [header("tokenizer", "1.0.0", len(good), sha256(good)), b"\xff\xff\xff"]
    short = [header("tokenizer", "1.0.0", len(good) + 1, sha256(good)), chunk(good)]
    ok = [header("tokenizer", "1.0.0", len(good), sha256(good)), chunk(good)]
    raw_push(catalog.address, token, bad)  # warm up: classes, caches, threads
    gc.collect()
    try:
        gc.disable()
        found = []
        for messages in (bad, short, ok, ok, bad):
            raw_push(catalog.address, token, messages)
            found.append(gc.collect())
    finally:
        gc.enable()
    assert found == [0, 0, 0, 0, 0]


def test_a_restart_clears_what_a_crash_left_but_not_a_live_upload(
    tmp_path: Path, bundles: dict[str, Path], cli: Callable[..., Result]
):
    """A catalog killed mid-push leaves its upload file; one killed between moving a blob
    into place and committing its row leaves an orphan blob. The next start removes both,
    while an upload another catalog process is receiving right now stays."""
    from modelwire.catalog.store import Store

    data = tmp_path / "data"
    store = Store(data)
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

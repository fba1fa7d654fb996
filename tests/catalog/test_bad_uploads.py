"""Every kind of bad upload is answered with its own status and message, and leaves nothing
behind: garbage, wrong headers, malformed protobuf, tampered bundles, zip bombs, uploads over
the limit -- and answering them keeps nothing for the garbage collector."""

from __future__ import annotations

import gc
import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from click.testing import Result

from tests.catalog.helpers import (
    Catalog,
    CatalogProcess,
    Contents,
    chunk,
    contents,
    header,
    raw_push,
    sha256,
)

pytestmark = pytest.mark.timeout(90)

MiB = 1024 * 1024
EMPTY = Contents(rows=[], blobs=[], uploads=[])


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

"""A catalog's data directory is made only when asked (`catalog init`, `serve --init`,
the first `user add`), and a lost token is re-issued (`catalog user token`), revoking
the old one at once, also for a catalog that is running."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from click.testing import Result

from modelwire.catalog.store import Store
from tests.catalog.helpers import PB, CatalogProcess, raw_unary
from tests.servers import clean_env

pytestmark = pytest.mark.timeout(60)


def _no_catalog(data: Path, why: str) -> str:
    return (
        f"error: data={str(data)!r}: no catalog there ({why}); create one with "
        f"'modelwire catalog init --data {data}' or "
        f"'modelwire catalog serve --init --data {data}'\n"
    )


def test_serve_on_a_mistyped_data_directory_is_one_error_line_and_creates_nothing(tmp_path):
    """A subprocess: on the old code, serve ran (an empty catalog) until killed."""
    missing = tmp_path / "catalgo-data"
    proc = subprocess.run(
        [sys.executable, "-m", "modelwire", "catalog", "serve", "--data", str(missing),
         "--port", "0"],
        capture_output=True, text=True, timeout=30, check=False, env=clean_env(),
    )  # fmt: skip
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr.endswith(_no_catalog(missing, "the directory does not exist"))
    assert not missing.exists()


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["user", "token", "alice"]])
def test_a_directory_without_a_catalog_is_not_one(
    tmp_path: Path, cli: Callable[..., Result], command: list[str]
):
    data = tmp_path / "empty"
    data.mkdir()
    result = cli("catalog", *command, "--data", str(data))
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.endswith(_no_catalog(data, "it holds no catalog.db"))
    assert list(data.iterdir()) == []


def test_init_makes_a_catalog_that_serve_then_opens(tmp_path: Path, cli: Callable[..., Result]):
    data = tmp_path / "data"
    made = cli("catalog", "init", "--data", str(data))
    assert (made.exit_code, made.stdout, made.stderr) == (
        0,
        f"created a new catalog in {data}\n",
        "",
    )
    assert (data / "catalog.db").is_file()
    again = cli("catalog", "init", "--data", str(data))
    assert (again.exit_code, again.stdout) == (0, f"{data} holds a catalog\n")
    server = CatalogProcess(data)
    try:
        assert server.terminate() == 0
    finally:
        server.kill()


def test_the_first_user_add_makes_the_catalog_and_says_so(
    tmp_path: Path, cli: Callable[..., Result]
):
    data = tmp_path / "data"
    bad = cli("catalog", "user", "add", "al ice", "--data", str(data))
    assert bad.exit_code == 1
    assert not data.exists()  # a refused name makes no catalog
    first = cli("catalog", "user", "add", "alice", "--data", str(data))
    assert first.exit_code == 0, first.output
    assert first.stderr == f"created a new catalog in {data}\n"
    second = cli("catalog", "user", "add", "bob", "--data", str(data))
    assert (second.exit_code, second.stderr) == (0, "")


def test_a_reissued_token_replaces_the_old_one_on_a_running_catalog(
    tmp_path: Path, cli: Callable[..., Result]
):
    data = tmp_path / "data"
    old = cli("catalog", "user", "add", "alice", "--data", str(data)).stdout.splitlines()[-1]
    server = CatalogProcess(data)
    try:
        search = PB.get("SearchModelsRequest")()
        assert raw_unary(server.address, old, "SearchModels", search) == (grpc.StatusCode.OK, "")
        result = cli("catalog", "user", "token", "alice", "--data", str(data))
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[:-1] == [
            "new token for user alice; the old one no longer works (stored only as a hash, "
            "shown once):"
        ]
        new = lines[-1]
        assert new.startswith("mwt_") and new != old
        assert raw_unary(server.address, old, "SearchModels", search) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "the token is not valid (modelwire catalog user token NAME issues a new one)",
        )
        assert raw_unary(server.address, new, "SearchModels", search) == (grpc.StatusCode.OK, "")
        assert server.terminate() == 0
    finally:
        server.kill()


def test_a_token_for_nobody_is_one_error_line(tmp_path: Path, cli: Callable[..., Result]):
    data = tmp_path / "data"
    cli("catalog", "init", "--data", str(data))
    result = cli("catalog", "user", "token", "bob", "--data", str(data))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "error: no user 'bob' in this catalog (modelwire catalog user add bob makes one)\n",
    )


def test_a_relative_data_directory_names_blobs_the_validator_can_open(tmp_path, monkeypatch):
    """The validator runs in a folder of its own: a blob path relative to the catalog's
    working directory (`--data catalog-data`, as in the README) was not found there."""
    monkeypatch.chdir(tmp_path)
    store = Store("catalog-data", create=True)
    blob = store.blob_path("ab" * 32)
    assert blob.is_absolute()
    assert blob == tmp_path / "catalog-data" / "blobs" / "ab" / ("ab" * 31)

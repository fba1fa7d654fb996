"""`modelwire catalog serve` and `catalog user add`: a real subprocess with health and
reflection, SQLite in WAL mode, tokens stored only as hashes, UNAUTHENTICATED without one."""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from click.testing import Result
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from modelwire.catalog.api import CATALOG_SERVICE
from tests.catalog.helpers import PB, Catalog, CatalogProcess, contents, raw_unary
from tests.servers import health_status as health

pytestmark = pytest.mark.timeout(60)


def test_serve_announces_its_address_and_serves_health_and_reflection(
    tmp_path: Path, cli: Callable[..., Result]
):
    data = tmp_path / "data"
    server = CatalogProcess(data, "--init")
    try:
        assert re.fullmatch(
            r"modelwire catalog listening on 127\.0\.0\.1:\d+", server.listening_line
        )
        assert health(server.address) == "SERVING"
        assert health(server.address, CATALOG_SERVICE) == "SERVING"
        with grpc.insecure_channel(server.address) as channel:
            db = ProtoReflectionDescriptorDatabase(channel)
            services = set(db.get_services())
            service = descriptor_pool.DescriptorPool(db).FindServiceByName(CATALOG_SERVICE)
            methods = {m.name: (m.input_type.name, m.output_type.name) for m in service.methods}
        assert {CATALOG_SERVICE, "grpc.health.v1.Health"} <= services
        assert methods == {
            "PushBundle": ("PushBundleRequest", "PushBundleResponse"),
            "PullBundle": ("PullBundleRequest", "PullBundleResponse"),
            "PublishModel": ("PublishModelRequest", "PublishModelResponse"),
            "GetModel": ("GetModelRequest", "GetModelResponse"),
            "SearchModels": ("SearchModelsRequest", "SearchModelsResponse"),
        }
        assert server.terminate() == 0
    finally:
        server.kill()
    with sqlite3.connect(data / "catalog.db") as db_conn:
        assert db_conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db_conn.close()


def test_user_add_prints_the_token_last_and_stores_only_its_hash(
    tmp_path: Path, cli: Callable[..., Result]
):
    data = tmp_path / "data"
    result = cli("catalog", "user", "add", "alice", "--data", str(data))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:-1] == ["created user alice; its token (stored only as a hash, shown once):"]
    token = lines[-1]
    assert re.fullmatch(r"mwt_[A-Za-z0-9_-]{43}", token)
    raw = (data / "catalog.db").read_bytes()
    for path in data.iterdir():  # the WAL holds the newest pages
        if path.is_file():
            raw += path.read_bytes()
    assert token.encode() not in raw
    assert token[4:].encode() not in raw
    with sqlite3.connect(data / "catalog.db") as db:
        stored = db.execute("SELECT name, token_sha256 FROM users").fetchall()
    db.close()
    assert stored == [("alice", hashlib.sha256(token.encode()).hexdigest())]

    again = cli("catalog", "user", "add", "alice", "--data", str(data))
    assert (again.exit_code, again.stderr) == (1, "error: user 'alice' already exists\n")
    bad = cli("catalog", "user", "add", "al ice", "--data", str(data))
    assert (bad.exit_code, bad.stderr) == (
        1,
        "error: user name 'al ice' must be 1 to 64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit\n",
    )


CORRUPT = b"SQLite format 2\0" + b"not a database, but maybe all that is left of one" * 100


@pytest.mark.parametrize(
    "command", [["catalog", "user", "add", "bob"], ["catalog", "serve", "--port", "0"]]
)
def test_a_corrupt_database_is_one_error_line_and_is_left_as_it_was(
    tmp_path: Path, cli: Callable[..., Result], command: list[str]
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "catalog.db").write_bytes(CORRUPT)
    result = cli(*command, "--data", str(data))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: data={str(data)!r}: {data / 'catalog.db'} cannot be opened as the catalog's "
        "SQLite database (file is not a database); restore it from a backup, or choose "
        "another data directory\n",
    )
    assert (data / "catalog.db").read_bytes() == CORRUPT


def test_a_data_directory_that_cannot_be_created_is_one_error_line(
    tmp_path: Path, cli: Callable[..., Result]
):
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("mine")
    data = in_the_way / "data"
    result = cli("catalog", "user", "add", "bob", "--data", str(data))
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: data={str(data)!r}: cannot create the data directory (Not a directory: {data})\n",
    )
    assert in_the_way.read_text() == "mine"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param(
            None, "the catalog needs a token: pass --token, or set MODELWIRE_TOKEN", id="no-token"
        ),
        pytest.param(
            "mwt_not-a-token",
            "the token is not valid (modelwire catalog user token NAME issues a new one)",
            id="wrong-token",
        ),
    ],
)
def test_every_call_without_a_valid_token_is_unauthenticated(
    catalog: Catalog, token: str | None, message: str
):
    catalog.user("alice")
    requests = {
        "GetModel": PB.get("GetModelRequest")(name="tokenizer"),
        "SearchModels": PB.get("SearchModelsRequest")(),
        "PublishModel": PB.get("PublishModelRequest")(
            name="tokenizer", version="1.0.0", description="d", category="c"
        ),
    }
    for rpc, request in requests.items():
        assert raw_unary(catalog.address, token, rpc, request) == (
            grpc.StatusCode.UNAUTHENTICATED,
            message,
        ), rpc
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(catalog.address) as channel:
        pull: grpc.UnaryStreamMultiCallable[Any, bytes] = channel.unary_stream(
            f"/{CATALOG_SERVICE}/PullBundle", request_serializer=lambda m: m.SerializeToString()
        )
        with pytest.raises(grpc.RpcError) as info:
            list(pull(PB.get("PullBundleRequest")(name="tokenizer"), metadata=metadata))
        assert (info.value.code(), info.value.details()) == (
            grpc.StatusCode.UNAUTHENTICATED,
            message,
        )
    assert contents(catalog.data).uploads == []


def test_a_scheme_other_than_bearer_is_unauthenticated(catalog: Catalog):
    token = catalog.user("alice")
    with grpc.insecure_channel(catalog.address) as channel:
        call: grpc.UnaryUnaryMultiCallable[Any, bytes] = channel.unary_unary(
            f"/{CATALOG_SERVICE}/SearchModels",
            request_serializer=lambda m: m.SerializeToString(),
        )
        with pytest.raises(grpc.RpcError) as info:
            call(PB.get("SearchModelsRequest")(), metadata=(("authorization", f"Basic {token}"),))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_failure_of_the_catalog_itself_is_internal_naming_the_rpc_and_logged_once(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
):
    """A failure that no request caused (here the text index is gone from the database) is
    answered through the one status mapping: INTERNAL naming the rpc, with no detail of
    the failure, whose traceback is in the catalog's log, once."""
    token = catalog.user("alice")
    with sqlite3.connect(catalog.data / "catalog.db") as db:
        db.execute("DROP TABLE models_fts")
    db.close()
    request = PB.get("SearchModelsRequest")(text="tokens")
    with caplog.at_level(logging.INFO):
        answer = raw_unary(catalog.address, token, "SearchModels", request)
    assert answer == (
        grpc.StatusCode.INTERNAL,
        "SearchModels: internal error; see the server's log",
    )
    logged = [r for r in caplog.records if r.exc_info]
    assert [(r.name, r.levelname, r.getMessage(), r.rpc) for r in logged] == [
        ("modelwire.catalog.service", "ERROR", "SearchModels failed", "SearchModels")
    ]
    assert "no such table: models_fts" in str(logged[0].exc_info[1])  # type: ignore[index]

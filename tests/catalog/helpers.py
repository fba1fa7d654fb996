"""Real catalogs for tests: in this process (`Catalog`) or as `modelwire catalog serve`
subprocesses (`CatalogProcess`), and ways to look at what a data directory holds.

`raw_push` speaks the PushBundle protocol message by message, so a test can send what
no well-behaved client would: garbage, wrong headers, malformed protobuf.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from modelwire.catalog.api import CATALOG_SERVICE, catalog_classes
from modelwire.catalog.client import CatalogClient
from modelwire.catalog.server import LISTENING, RunningCatalog, start
from modelwire.config import CatalogConfig, CatalogSettings, ClientTls
from tests.servers import ModelwireProcess

ROOT = Path(__file__).resolve().parents[2]
PB = catalog_classes()


@dataclass
class Catalog:
    """A catalog served from this process on 127.0.0.1, a free port."""

    running: RunningCatalog
    data: Path

    @classmethod
    def start(cls, data: Path, **config: object) -> Catalog:
        """A new catalog in `data` (or the one there: `init` is idempotent)."""
        config.setdefault("init", True)
        running = start(CatalogConfig(data=str(data), port=0, **config))  # type: ignore[arg-type]
        return cls(running, data)

    @property
    def address(self) -> str:
        return self.running.address

    def user(self, name: str) -> str:
        """Create a user; its token."""
        return self.running.store.add_user(name)

    def client(self, token: str) -> CatalogClient:
        return CatalogClient(CatalogSettings(self.address, token))

    def stop(self) -> None:
        self.running.stop(0)


class CatalogProcess(ModelwireProcess):
    """`modelwire catalog serve --data DATA --port 0 ...` as a subprocess.

    Waits for the listening line and for health SERVING; failures include its stderr.
    Validation is off unless `args` has a `--validate`: the tests of everything else
    should not build an image per push.
    """

    def __init__(
        self,
        data: Path,
        *args: str,
        timeout: float = 30.0,
        env: dict[str, str] | None = None,
        tls: ClientTls | None = None,
    ) -> None:
        validate = () if "--validate" in args else ("--validate", "off")
        super().__init__(
            "catalog",
            "serve",
            "--data",
            str(data),
            "--port",
            "0",
            "--log-format",
            "json",
            *validate,
            *args,
            listening=LISTENING,
            what="catalog serve",
            timeout=timeout,
            serving=True,
            cwd=ROOT,
            env=None if env is None else {**os.environ, **env},
            tls=tls,
        )

    def terminate(self, timeout: float = 20.0) -> int:
        return super().terminate(timeout)


# ---------------------------------------------------------------- the raw protocol


def header(name: str, version: str, size: int, sha256: str, **extra: object) -> bytes:
    """A serialized PushBundleRequest carrying an UploadHeader."""
    upload = PB.get("UploadHeader")(name=name, version=version, size=size, sha256=sha256, **extra)
    data: bytes = PB.get("PushBundleRequest")(header=upload).SerializeToString()
    return data


def chunk(data: bytes) -> bytes:
    """A serialized PushBundleRequest carrying a chunk."""
    out: bytes = PB.get("PushBundleRequest")(chunk=data).SerializeToString()
    return out


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_push(
    address: str, token: str | None, messages: Sequence[bytes]
) -> tuple[grpc.StatusCode, str]:
    """Send these PushBundle messages as they are; (status, details) of the answer."""
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    with grpc.insecure_channel(address) as channel:
        call: grpc.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(
            f"/{CATALOG_SERVICE}/PushBundle"
        )
        try:
            call(iter(messages), metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def raw_unary(
    address: str, token: str | None, rpc: str, request: object
) -> tuple[grpc.StatusCode, str]:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    with grpc.insecure_channel(address) as channel:
        call: grpc.UnaryUnaryMultiCallable[Any, bytes] = channel.unary_unary(
            f"/{CATALOG_SERVICE}/{rpc}", request_serializer=lambda m: m.SerializeToString()
        )
        try:
            call(request, metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            assert isinstance(exc, grpc.Call)
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


# ---------------------------------------------------------------- what a data directory holds


@dataclass(frozen=True)
class Contents:
    rows: list[tuple[str, str, str, int]]  # (name, version, sha256, size)
    blobs: list[str]  # sha256 of every blob file, by its path
    uploads: list[str]  # files in uploads/


def contents(data: Path) -> Contents:
    with sqlite3.connect(data / "catalog.db") as db:
        rows = db.execute("SELECT name, version, sha256, size FROM models ORDER BY name, version")
        listed = [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]
    db.close()
    blobs = sorted(p.parent.name + p.name for p in (data / "blobs").glob("??/*"))
    uploads = sorted(p.name for p in (data / "uploads").iterdir())
    return Contents(listed, blobs, uploads)


def integrity_problems(data: Path) -> list[str]:
    """SQLite's integrity check, and every row's blob: present, with its sha256 and size."""
    problems: list[str] = []
    with sqlite3.connect(data / "catalog.db") as db:
        problems += [r[0] for r in db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        rows = db.execute("SELECT name, version, sha256, size FROM models").fetchall()
    db.close()
    for name, version, digest, size in rows:
        path = data / "blobs" / digest[:2] / digest[2:]
        if not path.is_file():
            problems.append(f"{name}:{version}: no blob")
            continue
        blob = path.read_bytes()
        if sha256(blob) != digest or len(blob) != size:
            problems.append(f"{name}:{version}: the blob does not match its row")
    return problems


def wait_until(predicate: object, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")

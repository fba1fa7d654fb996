"""The catalog's storage: SQLite (WAL) for metadata, a content-addressed blob store on disk.

    DATA/catalog.db          users, model versions, their method/field index, FTS
    DATA/blobs/ab/cdef...    bundle zips by sha256
    DATA/uploads/            uploads in progress (see `modelwire.catalog.upload`)

A version becomes visible in one write transaction that moves its checked,
fsynced upload to its content address and inserts its row. Every blob is placed
and removed only while holding SQLite's write lock, so a blob exists exactly
when a row names it (a crash between the move and the commit leaves an orphan
that `recover()` removes). The unique (name, version) key makes concurrent
pushes of one version race safely: exactly one wins; a loser with the same
bytes sees a no-op, one with different bytes AlreadyExists.

Tokens are stored as SHA-256 hashes only (they are 256-bit random strings, so a
plain hash suffices). Visibility: a version is seen by its owner, and by
everyone once published; anything else behaves as if it did not exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelwire.catalog.upload import Upload, clear_stale
from modelwire.errors import (
    AlreadyExists,
    ConfigError,
    FailedPrecondition,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)

__all__ = [
    "FIELD_SEP",
    "IndexRow",
    "ModelRow",
    "Store",
    "VersionRecord",
    "check_name",
    "check_version",
    "version_key",
    "version_sort_key",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_sha256 TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    vkey TEXT NOT NULL,         -- sorts like the version (version_sort_key)
    owner INTEGER NOT NULL REFERENCES users(id),
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    proto TEXT NOT NULL,
    service TEXT NOT NULL,      -- the full gRPC service name
    methods TEXT NOT NULL,      -- JSON list of MethodSummary objects
    published INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    created TEXT NOT NULL,
    published_at TEXT,
    UNIQUE (name, version)
);
CREATE INDEX IF NOT EXISTS models_by_name ON models(name, vkey DESC);
CREATE INDEX IF NOT EXISTS models_by_category ON models(category);
CREATE INDEX IF NOT EXISTS models_by_sha256 ON models(sha256);
CREATE TABLE IF NOT EXISTS model_tags (
    model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (tag, model)
);
CREATE TABLE IF NOT EXISTS methods (
    model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    method TEXT NOT NULL,
    required_request_fields INTEGER NOT NULL,
    required_key TEXT NOT NULL,  -- the required request fields, sorted, joined by \x1f
    PRIMARY KEY (model, method)
);
CREATE INDEX IF NOT EXISTS methods_by_required_key ON methods(required_key);
CREATE TABLE IF NOT EXISTS method_fields (
    model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    method TEXT NOT NULL,
    side TEXT NOT NULL,        -- 'request' or 'response'
    field TEXT NOT NULL,
    required INTEGER NOT NULL  -- 1: not optional (a producer must have it)
);
CREATE INDEX IF NOT EXISTS method_fields_by_field ON method_fields(side, field, required);
CREATE INDEX IF NOT EXISTS method_fields_by_model ON method_fields(model, method, side);
CREATE VIRTUAL TABLE IF NOT EXISTS models_fts USING fts5(
    name, description, tags, tokenize='trigram'
);
"""

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,127}$")
_VERSION = re.compile(r"^\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def version_key(version: str) -> tuple[Any, ...]:
    """Order versions numerically: 1.10.0 after 1.9.0; a pre-release before its release."""
    core, _, pre = version.split("+", 1)[0].partition("-")
    nums = tuple(int(p) if p.isdigit() else 0 for p in core.split("."))
    nums = nums + (0,) * (3 - len(nums))
    return (*nums, 0 if pre else 1, pre)


def version_sort_key(version: str) -> str:
    """`version_key` as text that SQLite orders the same way (the `vkey` column)."""
    *nums, release, pre = version_key(version)
    return ".".join(f"{n:012d}" for n in nums) + (".1" if release else f".0{pre}")


# (method, side, field, required): the search index of one version
IndexRow = tuple[str, str, str, bool]
FIELD_SEP = "\x1f"  # joins the field names of a method's `required_key`


@dataclass(frozen=True)
class VersionRecord:
    """What the catalog records about a pushed bundle, besides its bytes.

    Attributes:
        name, version: as in the bundle's manifest.
        manifest: the manifest (`modelwire.json`) as a JSON object.
        proto: the bundle's `model.proto`.
        service: the full name of the gRPC service.
        methods: one summary per method (name, rpc, request, response, doc,
            input, output), as `search` and `show` list them.
        index: the request and response fields of every method, for type search.
    """

    name: str
    version: str
    manifest: Mapping[str, Any]
    proto: str
    service: str
    methods: tuple[Mapping[str, str], ...]
    index: tuple[IndexRow, ...]


@dataclass(frozen=True)
class ModelRow:
    """One stored model version, without its manifest and proto (see `Store.document`)."""

    id: int
    name: str
    version: str
    owner: str
    sha256: str
    size: int
    service: str
    methods: tuple[dict[str, str], ...]
    published: bool
    description: str
    category: str
    tags: tuple[str, ...]
    created: str


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise InvalidRequest(
            f"model name {name!r} must be lower-case letters, digits, '-' or '_', "
            "starting with a letter",
            subject=name,
        )


def check_version(version: str) -> None:
    if not _VERSION.match(version):
        raise InvalidRequest(
            f"version {version!r} must look like 1.2.0 (or 1.2.0-rc1)", subject=version
        )


def _not_found(name: str, version: str | None) -> NotFound:
    """The answer for a version that is missing, or private to someone else: the same."""
    what = f"{name}:{version}" if version else name
    return NotFound(f"no model {what!r} in the catalog", subject=what)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Store:
    """Users, model versions and bundle blobs under one data directory.

    Thread-safe: each thread uses its own connection (SQLite in WAL mode lets
    readers run beside the one writer), and several processes may share a
    data directory.
    """

    def __init__(self, data: str | os.PathLike[str]) -> None:
        self.data = Path(data)
        self.blobs = self.data / "blobs"
        self.uploads = self.data / "uploads"
        try:
            for d in (self.data, self.blobs, self.uploads):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
            raise ConfigError(
                "data", str(data), f"cannot create the data directory ({reason})"
            ) from exc
        self.db_path = self.data / "catalog.db"
        self._local = threading.local()
        try:
            # executescript() manages its own transaction (it commits first)
            self._conn().executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            # never recreated: the file may be all that is left of the catalog's users
            # and models
            raise ConfigError(
                "data",
                str(data),
                f"{self.db_path} cannot be opened as the catalog's SQLite database ({exc}); "
                "restore it from a backup, or choose another data directory",
            ) from exc

    # ------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.db_path, timeout=30, isolation_level=None, check_same_thread=True
            )
            conn.row_factory = sqlite3.Row
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: it holds SQLite's write lock from its first statement."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def recover(self) -> tuple[int, int]:
        """Remove what a crash can leave: dead uploads, and blobs no row names.

        Returns (uploads removed, blobs removed). Safe beside running catalogs:
        live uploads are locked, and blobs are checked under the write lock.
        """
        uploads = clear_stale(self.uploads)
        blobs = 0
        with self._tx() as db:
            known = {r[0] for r in db.execute("SELECT DISTINCT sha256 FROM models")}
            for path in self.blobs.glob("??/*"):
                if path.parent.name + path.name not in known:
                    path.unlink(missing_ok=True)
                    blobs += 1
        return uploads, blobs

    # ------------------------------------------------------------ users

    def add_user(self, name: str) -> str:
        """Create a user; returns its bearer token (shown once, stored only as a hash)."""
        if not _USER.match(name):
            raise InvalidRequest(
                f"user name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
                subject=name,
            )
        token = "mwt_" + secrets.token_urlsafe(32)
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO users(name, token_sha256, created) VALUES (?, ?, ?)",
                    (name, _hash_token(token), _now()),
                )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"user {name!r} already exists", subject=name) from None
        return token

    def user_for_token(self, token: str) -> tuple[int, str] | None:
        row = (
            self._conn()
            .execute("SELECT id, name FROM users WHERE token_sha256 = ?", (_hash_token(token),))
            .fetchone()
        )
        return (int(row["id"]), str(row["name"])) if row else None

    def users(self) -> list[str]:
        return [r["name"] for r in self._conn().execute("SELECT name FROM users ORDER BY name")]

    # ------------------------------------------------------------ blobs

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256[2:]

    def begin_upload(self, *, limit: int, announced: int) -> Upload:
        return Upload(self.uploads, limit=limit, announced=announced)

    # ------------------------------------------------------------ models

    _SELECT = (
        "SELECT m.id, m.name, m.version, m.sha256, m.size, m.service,"
        " m.methods, m.published,"
        " m.description, m.category, m.tags, m.created, m.owner, u.name AS owner_name"
        " FROM models m JOIN users u ON u.id = m.owner"
    )

    @staticmethod
    def _row(r: sqlite3.Row) -> ModelRow:
        return ModelRow(
            id=r["id"],
            name=r["name"],
            version=r["version"],
            owner=r["owner_name"],
            sha256=r["sha256"],
            size=r["size"],
            service=r["service"],
            methods=tuple(json.loads(r["methods"])),
            published=bool(r["published"]),
            description=r["description"],
            category=r["category"],
            tags=tuple(json.loads(r["tags"])),
            created=r["created"],
        )

    def versions(self, name: str, viewer: int) -> list[ModelRow]:
        """Every version of `name` the viewer may see, oldest first."""
        rows = (
            self._conn()
            .execute(
                f"{self._SELECT} WHERE m.name = ? AND (m.published = 1 OR m.owner = ?)"
                " ORDER BY m.vkey",
                (name, viewer),
            )
            .fetchall()
        )
        return [self._row(r) for r in rows]

    def get(self, name: str, version: str | None, viewer: int) -> ModelRow:
        """A visible version (the latest if `version` is empty); NotFound otherwise."""
        query = f"{self._SELECT} WHERE m.name = ? AND (m.published = 1 OR m.owner = ?)"
        args: list[Any] = [name, viewer]
        if version:
            query += " AND m.version = ?"
            args.append(version)
        row = self._conn().execute(query + " ORDER BY m.vkey DESC LIMIT 1", args).fetchone()
        if row is None:
            visible = [r.version for r in self.versions(name, viewer)] if version else []
            if visible:  # only versions this viewer may see are named
                raise NotFound(
                    f"no version {version!r} of model {name!r}; its versions: {', '.join(visible)}",
                    subject=f"{name}:{version}",
                )
            raise _not_found(name, version)
        return self._row(row)

    def stored(self, name: str, version: str) -> tuple[int, str] | None:
        """(owner id, sha256) of a stored version, whoever may see it."""
        row = (
            self._conn()
            .execute(
                "SELECT owner, sha256 FROM models WHERE name = ? AND version = ?", (name, version)
            )
            .fetchone()
        )
        return (int(row["owner"]), str(row["sha256"])) if row else None

    def owner_of(self, name: str) -> int | None:
        row = (
            self._conn()
            .execute("SELECT owner FROM models WHERE name = ? LIMIT 1", (name,))
            .fetchone()
        )
        return int(row["owner"]) if row else None

    def commit(self, upload: Upload, record: VersionRecord, *, owner: int) -> tuple[ModelRow, bool]:
        """Make a finished, checked upload visible; returns (row, created).

        The same bytes already stored under that version: a no-op (created is
        False). Different bytes: AlreadyExists. The name of another user's
        model: PermissionDenied.
        """
        upload.durable()
        blob = self.blob_path(upload.sha256)
        with self._tx() as db:
            found = self._existing(db, record, owner, upload.sha256)
            if found is not None:
                return found, False
            blob.parent.mkdir(exist_ok=True)
            os.replace(upload.path, blob)
            try:
                _fsync_dir(blob.parent)
                row = self._insert(db, record, owner, upload.sha256, upload.size)
            except BaseException:
                blob.unlink(missing_ok=True)  # no row names it: the rollback follows
                raise
        return row, True

    def insert(
        self, record: VersionRecord, *, owner: int, sha256: str, size: int
    ) -> tuple[ModelRow, bool]:
        """Record a version whose blob is already in place (tools and benchmarks).

        Pushes go through `commit`, which moves the blob in as part of the
        transaction; this one refuses a version whose blob is missing.
        """
        if not self.blob_path(sha256).is_file():
            raise FailedPrecondition(f"no blob with sha256 {sha256}", subject=sha256)
        with self._tx() as db:
            found = self._existing(db, record, owner, sha256)
            if found is not None:
                return found, False
            return self._insert(db, record, owner, sha256, size), True

    def _existing(
        self, db: sqlite3.Connection, record: VersionRecord, owner: int, sha256: str
    ) -> ModelRow | None:
        name, version = record.name, record.version
        existing = db.execute(
            f"{self._SELECT} WHERE m.name = ? AND m.version = ?", (name, version)
        ).fetchone()
        if existing is not None:
            if existing["owner"] != owner:
                raise name_taken(name)
            if existing["sha256"] == sha256:
                return self._row(existing)
            raise version_taken(name, version, existing["sha256"])
        other = db.execute("SELECT owner FROM models WHERE name = ? LIMIT 1", (name,)).fetchone()
        if other is not None and other["owner"] != owner:
            raise name_taken(name)
        return None

    def _insert(
        self, db: sqlite3.Connection, record: VersionRecord, owner: int, sha256: str, size: int
    ) -> ModelRow:
        cur = db.execute(
            "INSERT INTO models(name, version, vkey, owner, sha256, size, manifest, proto,"
            " service, methods, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.name,
                record.version,
                version_sort_key(record.version),
                owner,
                sha256,
                size,
                json.dumps(record.manifest, sort_keys=True),
                record.proto,
                record.service,
                json.dumps([dict(m) for m in record.methods]),
                _now(),
            ),
        )
        model_id = cur.lastrowid
        # every method, those whose messages have no fields included
        required: dict[str, set[str]] = {m["name"]: set() for m in record.methods}
        for method, side, field, req in record.index:
            required.setdefault(method, set())
            if side == "request" and req:
                required[method].add(field)
        db.executemany(
            "INSERT INTO methods(model, method, required_request_fields, required_key)"
            " VALUES (?, ?, ?, ?)",
            [(model_id, m, len(f), FIELD_SEP.join(sorted(f))) for m, f in required.items()],
        )
        db.executemany(
            "INSERT INTO method_fields(model, method, side, field, required)"
            " VALUES (?, ?, ?, ?, ?)",
            [(model_id, m, side, f, int(req)) for m, side, f, req in record.index],
        )
        db.execute(
            "INSERT INTO models_fts(rowid, name, description, tags) VALUES (?, ?, '', '')",
            (model_id, record.name),
        )
        return self._row(db.execute(f"{self._SELECT} WHERE m.id = ?", (model_id,)).fetchone())

    def publish(
        self,
        name: str,
        version: str,
        viewer: int,
        description: str,
        category: str,
        tags: Sequence[str],
    ) -> ModelRow:
        tags = sorted(set(tags))
        with self._tx() as db:
            row = db.execute(
                f"{self._SELECT} WHERE m.name = ? AND m.version = ?", (name, version)
            ).fetchone()
            if row is None or (row["owner"] != viewer and not row["published"]):
                raise _not_found(name, version)
            if row["owner"] != viewer:
                raise PermissionDenied(
                    f"only the owner of {name}:{version} can publish it",
                    subject=f"{name}:{version}",
                )
            db.execute(
                "UPDATE models SET published = 1, description = ?, category = ?, tags = ?,"
                " published_at = ? WHERE id = ?",
                (description, category, json.dumps(tags), _now(), row["id"]),
            )
            db.execute("DELETE FROM model_tags WHERE model = ?", (row["id"],))
            db.executemany(
                "INSERT INTO model_tags(model, tag) VALUES (?, ?)", [(row["id"], t) for t in tags]
            )
            db.execute(
                "UPDATE models_fts SET description = ?, tags = ? WHERE rowid = ?",
                (description, " ".join(tags), row["id"]),
            )
            new = db.execute(f"{self._SELECT} WHERE m.id = ?", (row["id"],)).fetchone()
        return self._row(new)

    # ------------------------------------------------------------ reading for search

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for read-only queries (`modelwire.catalog.search`)."""
        return self._conn()

    def document(self, model_id: int) -> tuple[str, str]:
        """(manifest as JSON text, proto) of a version."""
        row = (
            self._conn()
            .execute("SELECT manifest, proto FROM models WHERE id = ?", (model_id,))
            .fetchone()
        )
        if row is None:
            raise NotFound("that model version is gone")
        return str(row["manifest"]), str(row["proto"])

    def schemas_json(self, ids: Sequence[int]) -> dict[int, str]:
        """The `schema` of these versions' manifests, as JSON text."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        found = self._conn().execute(
            f"SELECT id, json_extract(manifest, '$.schema') FROM models WHERE id IN ({marks})",
            list(ids),
        )
        return {int(i): str(schema) for i, schema in found}

    def rows(self, ids: Sequence[int]) -> dict[int, ModelRow]:
        """The versions with these ids (those that exist)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        found = self._conn().execute(f"{self._SELECT} WHERE m.id IN ({marks})", list(ids))
        return {int(r["id"]): self._row(r) for r in found}


def name_taken(name: str) -> PermissionDenied:
    return PermissionDenied(
        f"model name {name!r} belongs to another user; push under another name", subject=name
    )


def version_taken(name: str, version: str, sha256: str) -> AlreadyExists:
    return AlreadyExists(
        f"{name}:{version} already exists with different bytes (sha256 {sha256[:12]}); "
        "versions are immutable: push a new version",
        subject=f"{name}:{version}",
    )


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

"""The catalog's storage: model versions in SQLite (WAL), bundle blobs on disk by content.

    DATA/catalog.db          users, model versions, their method/field index, FTS
                             (`modelwire.catalog.database`; users: `modelwire.catalog.users`)
    DATA/blobs/ab/cdef...    bundle zips by sha256
    DATA/uploads/            uploads in progress (see `modelwire.catalog.upload`)

A version becomes visible in one write transaction that moves its checked,
fsynced upload to its content address and inserts its row. Every blob is placed
and removed only while holding SQLite's write lock, so a blob exists exactly
when a row names it (a crash between the move and the commit leaves an orphan
that `recover()` removes). The unique (name, version) key makes concurrent
pushes of one version race safely: exactly one wins; a loser with the same
bytes sees a no-op, one with different bytes AlreadyExists.

Visibility: a version is seen by its owner, and by everyone once published;
anything else behaves as if it did not exist (the same NotFound).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelwire.catalog.database import Database, now
from modelwire.catalog.records import FIELD_SEP, ModelRow, VersionRecord, version_sort_key
from modelwire.catalog.refusals import name_taken, no_catalog, not_found, version_taken
from modelwire.catalog.upload import Upload, clear_stale
from modelwire.catalog.users import add_user, reissue_token, user_for_token, user_names
from modelwire.errors import (
    ConfigError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)

__all__ = ["Store"]


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

    Args:
        data: the data directory.
        create: make a new catalog there if it holds none. Without it, a directory
            that does not exist (a typo) or holds no catalog.db is an error, not an
            empty catalog where every token is refused.

    Raises:
        ConfigError: no catalog there (and not `create`), the directory cannot be
            made, or its catalog.db is not the catalog's database.
    """

    def __init__(self, data: str | os.PathLike[str], *, create: bool = False) -> None:
        self.data = Path(data).absolute()  # validators run in folders of their own
        self.blobs = self.data / "blobs"
        self.uploads = self.data / "uploads"
        self.db_path = self.data / "catalog.db"
        self.created = not self.db_path.exists()
        if self.created and not create:
            raise ConfigError("data", str(data), no_catalog(Path(data)))
        try:
            for d in (self.data, self.blobs, self.uploads):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc)
            raise ConfigError(
                "data", str(data), f"cannot create the data directory ({reason})"
            ) from exc
        self.db = Database(self.db_path, data=str(data))

    def recover(self) -> tuple[int, int]:
        """Remove what a crash can leave: dead uploads, and blobs no row names.

        Returns (uploads removed, blobs removed). Safe beside running catalogs:
        live uploads are locked, and blobs are checked under the write lock.
        """
        uploads = clear_stale(self.uploads)
        blobs = 0
        with self.db.tx() as db:
            known = {r[0] for r in db.execute("SELECT DISTINCT sha256 FROM models")}
            for path in self.blobs.glob("??/*"):
                if path.parent.name + path.name not in known:
                    path.unlink(missing_ok=True)
                    blobs += 1
        return uploads, blobs

    # ------------------------------------------------------------ users

    def add_user(self, name: str) -> str:
        """Create a user; returns its bearer token (shown once, stored only as a hash)."""
        return add_user(self.db, name)

    def user_for_token(self, token: str) -> tuple[int, str] | None:
        return user_for_token(self.db, token)

    def users(self) -> list[str]:
        return user_names(self.db)

    def reissue_token(self, name: str) -> str:
        """A new bearer token for user `name`; the old one stops working at once."""
        return reissue_token(self.db, name)

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
            self.db.conn()
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
        row = self.db.conn().execute(query + " ORDER BY m.vkey DESC LIMIT 1", args).fetchone()
        if row is None:
            visible = [r.version for r in self.versions(name, viewer)] if version else []
            if visible:  # only versions this viewer may see are named
                raise NotFound(
                    f"no version {version!r} of model {name!r}; its versions: {', '.join(visible)}",
                    subject=f"{name}:{version}",
                )
            raise not_found(name, version)
        return self._row(row)

    def stored(self, name: str, version: str) -> tuple[int, str] | None:
        """(owner id, sha256) of a stored version, whoever may see it."""
        row = (
            self.db.conn()
            .execute(
                "SELECT owner, sha256 FROM models WHERE name = ? AND version = ?", (name, version)
            )
            .fetchone()
        )
        return (int(row["owner"]), str(row["sha256"])) if row else None

    def owner_of(self, name: str) -> int | None:
        row = (
            self.db.conn()
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
        with self.db.tx() as db:
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
        with self.db.tx() as db:
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
                now(),
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
        with self.db.tx() as db:
            row = db.execute(
                f"{self._SELECT} WHERE m.name = ? AND m.version = ?", (name, version)
            ).fetchone()
            if row is None or (row["owner"] != viewer and not row["published"]):
                raise not_found(name, version)
            if row["owner"] != viewer:
                raise PermissionDenied(
                    f"only the owner of {name}:{version} can publish it",
                    subject=f"{name}:{version}",
                )
            db.execute(
                "UPDATE models SET published = 1, description = ?, category = ?, tags = ?,"
                " published_at = ? WHERE id = ?",
                (description, category, json.dumps(tags), now(), row["id"]),
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
        return self.db.conn()

    def document(self, model_id: int) -> tuple[str, str]:
        """(manifest as JSON text, proto) of a version."""
        row = (
            self.db.conn()
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
        found = self.db.conn().execute(
            f"SELECT id, json_extract(manifest, '$.schema') FROM models WHERE id IN ({marks})",
            list(ids),
        )
        return {int(i): str(schema) for i, schema in found}

    def rows(self, ids: Sequence[int]) -> dict[int, ModelRow]:
        """The versions with these ids (those that exist)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        found = self.db.conn().execute(f"{self._SELECT} WHERE m.id IN ({marks})", list(ids))
        return {int(r["id"]): self._row(r) for r in found}

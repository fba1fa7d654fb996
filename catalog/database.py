"""The catalog's SQLite database: its tables, one connection per thread, write transactions.

    DATA/catalog.db     users, model versions, their method/field index, FTS, and the
                        validation of each version (`modelwire.catalog.validations`)

WAL mode lets readers run beside the one writer, in this process and in others
sharing the data directory. A file that is not the catalog's database is never
recreated: it may be all that is left of the catalog's users and models.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from modelwire.errors import ConfigError

__all__ = ["SCHEMA", "Database", "now"]

SCHEMA = """
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
-- added with validation on upload: a catalog made before gets it when next opened, its
-- versions without a row ("unvalidated" until a validating catalog queues them)
CREATE TABLE IF NOT EXISTS validations (
    model INTEGER PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,
    status TEXT NOT NULL,              -- 'pending', 'passed' or 'failed'
    queued TEXT NOT NULL,
    mode TEXT NOT NULL DEFAULT '',     -- where it ran: 'docker' or 'venv'
    reason TEXT NOT NULL DEFAULT '',   -- failed: why, in one line
    report TEXT,                       -- passed or failed: the report (report_json), JSON
    note TEXT NOT NULL DEFAULT '',     -- pending: its step, or why the validator retries
    attempts INTEGER NOT NULL DEFAULT 0,   -- runs the validator itself could not finish
    retry_at REAL NOT NULL DEFAULT 0,      -- pending: not before this time (Unix seconds)
    claimed_by TEXT,                   -- the catalog process running it: 'pid:instance'
    finished TEXT,
    forced_status TEXT,                -- published with --force while it was this status
    forced_by TEXT,
    forced_at TEXT
);
CREATE INDEX IF NOT EXISTS validations_by_status ON validations(status, model);
"""


class Database:
    """The catalog's database file, opened (and its tables created) once.

    Args:
        path: the database file (`DATA/catalog.db`).
        data: the data directory as the operator gave it, for error messages.

    Raises:
        ConfigError: the file cannot be opened as the catalog's SQLite database.
    """

    def __init__(self, path: Path, *, data: str) -> None:
        self.path = path
        self._local = threading.local()
        try:
            # executescript() manages its own transaction (it commits first)
            self.conn().executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                "data",
                data,
                f"{path} cannot be opened as the catalog's SQLite database ({exc}); "
                "restore it from a backup, or choose another data directory",
            ) from exc

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (made on first use)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=True
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
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: it holds SQLite's write lock from its first statement."""
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def now() -> str:
    """The time a row records: UTC, to the second, ISO 8601."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

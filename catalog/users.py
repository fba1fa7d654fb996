"""The catalog's users and their bearer tokens.

A token is a 256-bit random string shown once, when its user is made or its
token re-issued (which revokes the old one); the database keeps only its
SHA-256 (a plain hash suffices for a random secret of that size), so a copy of
the data directory gives nobody a working token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3

from modelwire.catalog.database import Database, now
from modelwire.errors import AlreadyExists, InvalidRequest, NotFound

__all__ = ["add_user", "check_user_name", "reissue_token", "user_for_token", "user_names"]

_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_user_name(name: str) -> None:
    """Raises InvalidRequest unless `name` can name a user."""
    if not _USER.match(name):
        raise InvalidRequest(
            f"user name {name!r} must be 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            subject=name,
        )


def add_user(db: Database, name: str) -> str:
    """Create a user; returns its bearer token (shown once, stored only as a hash)."""
    check_user_name(name)
    token = "mwt_" + secrets.token_urlsafe(32)
    try:
        with db.tx() as conn:
            conn.execute(
                "INSERT INTO users(name, token_sha256, created) VALUES (?, ?, ?)",
                (name, _hash_token(token), now()),
            )
    except sqlite3.IntegrityError:
        raise AlreadyExists(f"user {name!r} already exists", subject=name) from None
    return token


def reissue_token(db: Database, name: str) -> str:
    """A new token for user `name`, replacing (and so revoking) the old one.

    Raises:
        NotFound: there is no such user.
    """
    token = "mwt_" + secrets.token_urlsafe(32)
    with db.tx() as conn:
        changed = conn.execute(
            "UPDATE users SET token_sha256 = ? WHERE name = ?", (_hash_token(token), name)
        ).rowcount
    if not changed:
        raise NotFound(
            f"no user {name!r} in this catalog (modelwire catalog user add {name} makes one)",
            subject=name,
        )
    return token


def user_for_token(db: Database, token: str) -> tuple[int, str] | None:
    """(id, name) of the token's user; None for a token nobody holds."""
    row = (
        db.conn()
        .execute("SELECT id, name FROM users WHERE token_sha256 = ?", (_hash_token(token),))
        .fetchone()
    )
    return (int(row["id"]), str(row["name"])) if row else None


def user_names(db: Database) -> list[str]:
    return [r["name"] for r in db.conn().execute("SELECT name FROM users ORDER BY name")]


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

"""The catalog store's refusals, worded once: a missing (or private) version, a name or
version that is taken, a data directory without a catalog."""

from __future__ import annotations

from pathlib import Path

from modelwire.errors import AlreadyExists, NotFound, PermissionDenied

__all__ = ["name_taken", "no_catalog", "not_found", "version_taken"]


def not_found(name: str, version: str | None) -> NotFound:
    """The answer for a version that is missing, or private to someone else: the same."""
    what = f"{name}:{version}" if version else name
    return NotFound(f"no model {what!r} in the catalog", subject=what)


def no_catalog(data: Path) -> str:
    """Why there is no catalog at `data`, and the two ways to make one."""
    where = "the directory does not exist" if not data.exists() else "it holds no catalog.db"
    if data.exists() and not data.is_dir():
        where = "it is not a directory"
    return (
        f"no catalog there ({where}); create one with 'modelwire catalog init --data {data}' "
        f"or 'modelwire catalog serve --init --data {data}'"
    )


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

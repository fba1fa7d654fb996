"""The validation of each model version, as the catalog's database records it: the queue of
pending jobs, their claims, and the verdicts.

A version has one row in `validations` once a validating catalog has queued it; a
version without one is "unvalidated" (pushed while validation was off, or before it
existed). A pending job is claimed by one catalog process at a time (`claimed_by`:
its pid and a random instance id, as several processes may share a data directory);
every later write names the claim, so a job released or claimed again is never
overwritten by a run that lost it. A claim whose process is gone (killed mid-job) is
released when a catalog starts, and the job runs again.

This module only reads and writes rows: it runs nothing (`validation_jobs` does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelwire.catalog.database import Database, now
from modelwire.catalog.listing import ValidationInfo

__all__ = [
    "FAILED",
    "NOTE_LIMIT",
    "PASSED",
    "PENDING",
    "UNVALIDATED",
    "Job",
    "claim_next",
    "finish",
    "next_retry",
    "queue",
    "queue_unlooked",
    "record_force",
    "release",
    "release_dead_claims",
    "retry_later",
    "set_note",
    "status_of",
    "statuses",
    "version_id",
]

PENDING = "pending"
PASSED = "passed"
FAILED = "failed"
UNVALIDATED = "unvalidated"  # no row: no validating catalog has queued it
NOTE_LIMIT = 200  # a step's note (a Dockerfile step can be a long line)


@dataclass(frozen=True)
class Job:
    """A claimed validation: the version and where its bundle is."""

    model: int
    name: str
    version: str
    sha256: str
    attempts: int


def status_of(db: Database, model: int) -> ValidationInfo:
    """The validation of one version (unvalidated when it has no row)."""
    conn = db.conn()
    row = conn.execute("SELECT * FROM validations WHERE model = ?", (model,)).fetchone()
    if row is None:
        return ValidationInfo(UNVALIDATED)
    ahead = 0
    if row["status"] == PENDING:
        ahead = conn.execute(
            "SELECT COUNT(*) FROM validations WHERE status = 'pending' AND model < ?", (model,)
        ).fetchone()[0]
    return ValidationInfo(
        status=row["status"],
        mode=row["mode"],
        reason=row["reason"],
        report=json.loads(row["report"]) if row["report"] else None,
        note=row["note"],
        attempts=row["attempts"],
        running=row["claimed_by"] is not None,
        ahead=int(ahead),
        queued=row["queued"],
        finished=row["finished"] or "",
        forced_status=row["forced_status"] or "",
        forced_by=row["forced_by"] or "",
        forced_at=row["forced_at"] or "",
    )


def version_id(db: Database, name: str, version: str) -> tuple[int, int] | None:
    """(id, owner id) of a stored version, whoever may see it; None if there is none."""
    row = (
        db.conn()
        .execute("SELECT id, owner FROM models WHERE name = ? AND version = ?", (name, version))
        .fetchone()
    )
    return (int(row["id"]), int(row["owner"])) if row else None


def statuses(db: Database, models: Sequence[int]) -> dict[int, str]:
    """The status of each of these versions (unvalidated for those without a row)."""
    found = dict.fromkeys(models, UNVALIDATED)
    if models:
        marks = ",".join("?" * len(models))
        rows = db.conn().execute(
            f"SELECT model, status FROM validations WHERE model IN ({marks})", list(models)
        )
        found.update({int(m): str(s) for m, s in rows})
    return found


def queue(db: Database, model: int) -> None:
    """Queue a version (a no-op if it already has a row)."""
    with db.tx() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO validations(model, status, queued) VALUES (?, 'pending', ?)",
            (model, now()),
        )


def queue_unlooked(db: Database) -> int:
    """Queue every version that has no row yet; how many."""
    with db.tx() as conn:
        cur = conn.execute(
            "INSERT INTO validations(model, status, queued)"
            " SELECT id, 'pending', ? FROM models"
            " WHERE id NOT IN (SELECT model FROM validations) ORDER BY id",
            (now(),),
        )
        return cur.rowcount


def release_dead_claims(db: Database, dead: Callable[[str], bool]) -> list[int]:
    """Put the jobs claimed by processes that are gone back in the queue; their ids."""
    with db.tx() as conn:
        claimed = conn.execute(
            "SELECT model, claimed_by FROM validations WHERE claimed_by IS NOT NULL"
        ).fetchall()
        gone = [int(r["model"]) for r in claimed if dead(str(r["claimed_by"]))]
        conn.executemany(
            "UPDATE validations SET claimed_by = NULL, note = 'queued again: the catalog "
            "running it stopped' WHERE model = ?",
            [(m,) for m in gone],
        )
    return gone


def claim_next(db: Database, claimer: str, at: float) -> Job | None:
    """Claim the oldest pending job that nobody runs and whose retry time has come."""
    with db.tx() as conn:
        row = conn.execute(
            "SELECT v.model, v.attempts, m.name, m.version, m.sha256"
            " FROM validations v JOIN models m ON m.id = v.model"
            " WHERE v.status = 'pending' AND v.claimed_by IS NULL AND v.retry_at <= ?"
            " ORDER BY v.model LIMIT 1",
            (at,),
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE validations SET claimed_by = ?, note = 'started' WHERE model = ?",
            (claimer, row["model"]),
        )
    return Job(row["model"], row["name"], row["version"], row["sha256"], row["attempts"])


def next_retry(db: Database) -> float | None:
    """The earliest time an unclaimed pending job may run (None: there is none)."""
    row = (
        db.conn()
        .execute(
            "SELECT MIN(retry_at) FROM validations WHERE status = 'pending' AND claimed_by IS NULL"
        )
        .fetchone()
    )
    return None if row[0] is None else float(row[0])


def set_note(db: Database, job: Job, claimer: str, note: str, *, mode: str = "") -> None:
    """Record a running job's current step (cut to `NOTE_LIMIT` characters)."""
    if len(note) > NOTE_LIMIT:
        note = note[: NOTE_LIMIT - 1] + "…"
    with db.tx() as conn:
        conn.execute(
            "UPDATE validations SET note = ?, mode = CASE WHEN ? = '' THEN mode ELSE ? END"
            " WHERE model = ? AND claimed_by = ?",
            (note, mode, mode, job.model, claimer),
        )


def finish(
    db: Database, job: Job, claimer: str, *, passed: bool, mode: str, reason: str, report: str
) -> bool:
    """Record a verdict (`report`: the report as JSON text); False if the claim was lost."""
    with db.tx() as conn:
        cur = conn.execute(
            "UPDATE validations SET status = ?, mode = ?, reason = ?, report = ?, note = '',"
            " claimed_by = NULL, finished = ? WHERE model = ? AND claimed_by = ?",
            (PASSED if passed else FAILED, mode, reason, report, now(), job.model, claimer),
        )
        return cur.rowcount == 1


def retry_later(db: Database, job: Job, claimer: str, note: str, at: float) -> None:
    """Give a job back to the queue, to run again from time `at`: the validator failed."""
    with db.tx() as conn:
        conn.execute(
            "UPDATE validations SET claimed_by = NULL, note = ?, attempts = attempts + 1,"
            " retry_at = ? WHERE model = ? AND claimed_by = ?",
            (note, at, job.model, claimer),
        )


def release(db: Database, job: Job, claimer: str) -> None:
    """Give a job back to the queue as it was (the catalog is stopping)."""
    with db.tx() as conn:
        conn.execute(
            "UPDATE validations SET claimed_by = NULL, note = 'queued again: the catalog "
            "running it stopped' WHERE model = ? AND claimed_by = ?",
            (job.model, claimer),
        )


def record_force(db: Database, model: int, status: str, user: str) -> None:
    """Record that `user` published a version with --force while its validation was
    `status`."""
    with db.tx() as conn:
        conn.execute(
            "UPDATE validations SET forced_status = ?, forced_by = ?, forced_at = ?"
            " WHERE model = ?",
            (status, user, now(), model),
        )

"""A model version as the catalog lists it, its validation, and the references that name one.

iris              the latest version of a model (the latest one you may see)
iris:1.2.0        one version
iris:1.2.0.classify, iris.classify   a method of a version
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelInfo", "ValidationInfo", "parse_method_ref", "parse_ref"]


def parse_ref(ref: str) -> tuple[str, str]:
    """`name`, `name:1.2.0` -> (name, version or '')."""
    name, _, version = ref.partition(":")
    if not name:
        raise ValueError(f"{ref!r} is not NAME or NAME:VERSION")
    return name, version


def parse_method_ref(ref: str) -> tuple[str, str, str]:
    """`iris.classify`, `iris:1.2.0.classify` -> (model, version, method)."""
    head, dot, method = ref.rpartition(".")
    if not dot or not head or not method:
        raise ValueError(f"{ref!r} is not MODEL[:VERSION].METHOD")
    model, version = parse_ref(head)
    return model, version, method


@dataclass(frozen=True)
class ModelInfo:
    """A model version as the catalog lists it; `validation` is its validation's status
    (pending, passed, failed, unvalidated; "" from a catalog that predates validation)."""

    name: str
    version: str
    owner: str
    published: bool
    description: str
    category: str
    tags: tuple[str, ...]
    methods: tuple[dict[str, str], ...]
    sha256: str
    size: int
    created: str
    service: str
    validation: str = ""

    @classmethod
    def from_pb(cls, m: Any) -> ModelInfo:
        return cls(
            m.name,
            m.version,
            m.owner,
            m.published,
            m.description,
            m.category,
            tuple(m.tags),
            tuple(
                {
                    "name": x.name,
                    "rpc": x.rpc,
                    "request": x.request,
                    "response": x.response,
                    "doc": x.doc,
                    "input": x.input,
                    "output": x.output,
                }
                for x in m.methods
            ),
            m.sha256,
            m.size,
            m.created,
            m.service,
            m.validation,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "owner": self.owner,
            "published": self.published,
            "description": self.description,
            "category": self.category,
            "tags": list(self.tags),
            "methods": list(self.methods),
            "sha256": self.sha256,
            "size": self.size,
            "created": self.created,
            "service": self.service,
            "validation": self.validation,
        }


@dataclass(frozen=True)
class ValidationInfo:
    """A version's validation as `show` gives it (see the ValidationStatus message).

    Attributes:
        status: pending, passed, failed or unvalidated.
        mode: docker or venv ("" until known).
        reason: why it failed.
        report: the report's JSON document (`report_from_json` reads it), None until it
            ended.
        note: while pending, its step or why the validator retries.
        attempts: runs the validator itself could not finish.
        running: it runs now.
        ahead: jobs before it in the queue.
        queued, finished: when.
        forced_status, forced_by, forced_at: published with --force while it was
            `forced_status`, by whom, when ("" if not).
    """

    status: str
    mode: str = ""
    reason: str = ""
    report: dict[str, Any] | None = None
    note: str = ""
    attempts: int = 0
    running: bool = False
    ahead: int = 0
    queued: str = ""
    finished: str = ""
    forced_status: str = ""
    forced_by: str = ""
    forced_at: str = ""

    @classmethod
    def from_pb(cls, v: Any) -> ValidationInfo:
        return cls(
            v.status or "unvalidated",
            v.mode,
            v.reason,
            json.loads(v.report_json) if v.report_json else None,
            v.note,
            int(v.attempts),
            bool(v.running),
            int(v.ahead),
            v.queued,
            v.finished,
            v.forced_status,
            v.forced_by,
            v.forced_at,
        )

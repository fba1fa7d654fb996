"""Check a blueprint file: read it, find its models' schemas, type-check it.

What `modelwire check`, `graph`, `stubs`, `export` and `run` share: the file is read
and parsed once, and every problem the loader, the resolver and the type check find
is reported together. Nothing here starts a model: the process launcher
(`modelwire.broker.launch`) and the container runner are not imported.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from modelwire.broker.blueprint import Blueprint
from modelwire.broker.fusing import decide_fusing
from modelwire.broker.loader import load_blueprint
from modelwire.broker.plan import SolutionPlan
from modelwire.broker.resolve import CatalogResolver, resolve
from modelwire.broker.typecheck import check
from modelwire.diagnostics import Diagnostic
from modelwire.errors import BlueprintError

__all__ = ["check_blueprint", "check_file", "read_blueprint"]


def read_blueprint(path: str | Path) -> tuple[Blueprint, list[Diagnostic]]:
    """Read and parse a blueprint file; the blueprint, and the problems found in it.

    Raises:
        BlueprintError: nothing usable could be read (the problems, rendered).
        OSError: the file cannot be read.
    """
    bp, diags = load_blueprint(path)
    if bp is None:
        raise BlueprintError.from_diagnostics(diags, str(path))
    return bp, diags


def check_blueprint(
    bp: Blueprint,
    diagnostics: list[Diagnostic],
    *,
    catalog: CatalogResolver | None = None,
    fuse: bool = False,
) -> tuple[SolutionPlan, dict[str, Path], dict[str, str]]:
    """Resolve and type-check a blueprint read by `read_blueprint` (with its problems),
    and decide which of its models are fused into the broker (`plan.fusing`).

    Args:
        fuse: `run --fuse`: fuse every bundle model that does not opt out.

    Returns:
        The plan, the bundles (model -> path; those in `plan.fused` are loaded into
        the broker, the others started), and the models already running (model ->
        address).

    Raises:
        BlueprintError: the blueprint has errors (all of them, rendered).
    """
    # what loaded is checked too, so one run reports every problem: the checker skips
    # what the loader could not read
    resolved = resolve(bp, catalog=catalog)
    plan, more = check(bp, resolved.schemas)
    verdicts, unfusable = decide_fusing(bp, resolved.bundles, fuse)
    diags = diagnostics + resolved.diagnostics + more + unfusable
    if plan is None or diags:
        raise BlueprintError.from_diagnostics(diags, bp.file)
    return replace(plan, fusing=verdicts), resolved.bundles, resolved.addresses


def check_file(
    path: str | Path, *, catalog: CatalogResolver | None = None, fuse: bool = False
) -> tuple[SolutionPlan, dict[str, Path], dict[str, str]]:
    """Read, resolve and type-check a blueprint file (`read_blueprint`, `check_blueprint`).

    Raises:
        BlueprintError: the blueprint has errors (all of them, rendered).
        OSError: the file cannot be read.
    """
    bp, diagnostics = read_blueprint(path)
    return check_blueprint(bp, diagnostics, catalog=catalog, fuse=fuse)

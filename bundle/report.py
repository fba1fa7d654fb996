"""A validation's report: its records, as text (`modelwire validate`) and as JSON (`--json`,
the catalog).

`ValidationReport` is frozen data (`modelwire.bundle.verdict` makes it);
`render_report()` is the one renderer; `report_json()` and `report_from_json()` are
exact inverses, so a stored report reads back as the same `ValidationReport`.
"""

from __future__ import annotations

import enum
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelwire.bundle.examples import ExampleKind
from modelwire.bundle.pickle_scan import PickleReach, PickleReference
from modelwire.codegen.answers import Tolerance

__all__ = [
    "REPORT_FORMAT",
    "Environment",
    "ExampleResult",
    "Failure",
    "MethodTiming",
    "Outcome",
    "Phases",
    "ValidationReport",
    "render_report",
    "report_from_json",
    "report_json",
]

REPORT_FORMAT = 1
_WIDTH = 100
_INDENT = " " * 15


class Failure(enum.Enum):
    """Why a validation failed: a closed set, so tools can act on it."""

    PYTHON = "python"  # no interpreter of the bundle's Python minor version
    REQUIREMENTS = "requirements"  # its requirements cannot be installed
    MISSING_MODULE = "missing-module"  # it needs a module its requirements do not install
    LOAD_TIMEOUT = "load-timeout"  # no SERVING within the load timeout
    CRASHED = "crashed"  # the server ended on its own (at load or during the calls)
    MEMORY = "memory"  # the server was stopped for using more than its memory limit
    TIMEOUT = "timeout"  # the whole run took longer than its time limit
    CALL = "call"  # an example was answered with an error status
    ANSWER = "answer"  # an answer differs from the recorded one
    ENVIRONMENT = "environment"  # the environment reported nothing that can be read


class Outcome(enum.Enum):
    """What became of one example."""

    PASSED = "passed"
    DIFFERENT = "different"  # answered, but not as recorded
    ERROR = "error"  # answered with an error status
    NOT_RUN = "not-run"  # the server never got to it


@dataclass(frozen=True)
class ExampleResult:
    """One example's result; `detail` says what differed or failed ("" if it passed)."""

    method: str
    index: int
    kind: ExampleKind
    outcome: Outcome
    detail: str = ""
    p50_ms: float | None = None


@dataclass(frozen=True)
class MethodTiming:
    """The calls made to one method and their median latency (None: no call answered)."""

    method: str
    calls: int
    p50_ms: float | None


@dataclass(frozen=True)
class Environment:
    """Where the bundle ran.

    Attributes:
        mode: ``venv`` or ``docker``.
        python: the Python version there ("" if it never ran).
        packages: the distributions installed there, (name, version).
        image: the image, in docker mode.
        isolation: what confined the model, one phrase each (``no network``,
            ``memory 1g``, ``uid 65534``, ...).
    """

    mode: str
    python: str = ""
    packages: tuple[tuple[str, str], ...] = ()
    image: str = ""
    isolation: tuple[str, ...] = ()


@dataclass(frozen=True)
class Phases:
    """Wall-clock seconds of each phase (None: the phase did not run)."""

    environment: float | None = None
    load: float | None = None
    calls: float | None = None
    total: float | None = None


@dataclass(frozen=True)
class ValidationReport:
    """The result of validating one bundle.

    Attributes:
        passed: whether it loaded and answered every example (as recorded, for
            recorded ones).
        failure: why not (None if it passed).
        reason: one line a contributor can act on ("" if it passed).
        examples: every example's result, in the order sent.
        methods: calls and p50 latency per method, in schema order.
        examples_kind: ``recorded``, ``generated`` or ``mixed``: what was checked.
        log_tail: the server's last log lines (kept when it failed).
        tolerance: the float tolerance answers were compared with.
    """

    bundle: str
    name: str
    version: str
    digest: str
    passed: bool
    failure: Failure | None
    reason: str
    examples: tuple[ExampleResult, ...]
    methods: tuple[MethodTiming, ...]
    phases: Phases
    environment: Environment
    pickle: PickleReach
    log_tail: tuple[str, ...] = ()
    tolerance: Tolerance = field(default_factory=Tolerance)

    @property
    def examples_kind(self) -> str:
        kinds = {r.kind for r in self.examples}
        if len(kinds) == 1:
            return next(iter(kinds)).value
        return "mixed" if kinds else ""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _wrapped(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        text,
        _WIDTH,
        initial_indent=f"  {label:<13}",
        subsequent_indent=_INDENT,
        break_on_hyphens=False,
    ) or [f"  {label}"]


def render_report(report: ValidationReport) -> str:
    """The report as `modelwire validate` prints it (no trailing newline)."""
    verdict = "PASSED" if report.passed else f"FAILED ({report.failure.value})"  # type: ignore[union-attr]
    lines = [f"validation of {report.name} {report.version} ({report.bundle}): {verdict}"]
    if report.reason:
        lines += _wrapped("reason", report.reason)
    env = report.environment
    where = env.mode + (f" {env.image}" if env.image else "")
    where += f", Python {env.python}" if env.python else ""
    lines += _wrapped("environment", where)
    if env.isolation:
        lines += _wrapped("isolation", ", ".join(env.isolation))
    if env.packages:
        lines += _wrapped("packages", ", ".join(f"{n} {v}" for n, v in env.packages))
    p = report.phases
    lines.append(
        f"  {'time':<13}{_s(p.total)}: environment {_s(p.environment)}, load {_s(p.load)}, "
        f"calls {_s(p.calls)}"
    )
    counts: dict[str, int] = {}
    for r in report.examples:
        counts[r.kind.value] = counts.get(r.kind.value, 0) + 1
    lines.append(f"  {'examples':<13}" + ", ".join(f"{n} {k}" for k, n in counts.items()))
    for r in report.examples:
        head = f"    {r.outcome.value:<9} {r.method} {r.kind.value} #{r.index}"
        lines.append(head + (f"  {_ms(r.p50_ms)}" if r.p50_ms is not None else ""))
        if r.detail:
            lines += textwrap.wrap(
                r.detail, _WIDTH, initial_indent=" " * 14, subsequent_indent=" " * 14
            )
    for m in report.methods:
        lines.append(f"  {'latency':<13}{m.method}: p50 {_ms(m.p50_ms)} over {m.calls} calls")
    t = report.tolerance
    lines.append(
        f"  {'tolerance':<13}floats within rel {t.rel:g}, abs {t.abs:g} (64-bit); "
        f"rel {t.rel32:g}, abs {t.abs32:g} (32-bit)"
    )
    reach = report.pickle
    flagged = ", ".join(str(r) for r in reach.flagged) or "nothing flagged"
    summary = f"{len(reach.modules)} modules; reaches: {flagged}"
    if reach.opaque:
        summary += f"; {reach.opaque} computed globals not readable"
    if reach.error:
        summary += f"; {reach.error}"
    lines += _wrapped("pickle", summary)
    if report.log_tail:
        lines.append("  log (last lines)")
        lines += [f"    {line}" for line in report.log_tail]
    return "\n".join(lines)


def report_json(report: ValidationReport) -> dict[str, Any]:
    """The report as a JSON document."""
    env, p, t = report.environment, report.phases, report.tolerance
    return {
        "format": REPORT_FORMAT,
        "bundle": report.bundle,
        "name": report.name,
        "version": report.version,
        "digest": report.digest,
        "passed": report.passed,
        "failure": report.failure.value if report.failure else None,
        "reason": report.reason,
        "examples_kind": report.examples_kind,
        "examples": [
            {
                "method": r.method,
                "index": r.index,
                "kind": r.kind.value,
                "outcome": r.outcome.value,
                "detail": r.detail,
                "p50_ms": r.p50_ms,
            }
            for r in report.examples
        ],
        "methods": [
            {"method": m.method, "calls": m.calls, "p50_ms": m.p50_ms} for m in report.methods
        ],
        "phases": {
            "environment": p.environment,
            "load": p.load,
            "calls": p.calls,
            "total": p.total,
        },
        "environment": {
            "mode": env.mode,
            "python": env.python,
            "packages": [list(x) for x in env.packages],
            "image": env.image,
            "isolation": list(env.isolation),
        },
        "pickle": {
            "references": [
                {
                    "module": r.module,
                    "name": r.name,
                    "kind": r.kind,
                    "reaches": list(r.reaches),
                    "where": r.where,
                }
                for r in report.pickle.references
            ],
            "opaque": report.pickle.opaque,
            "error": report.pickle.error,
        },
        "log_tail": list(report.log_tail),
        "tolerance": {"rel": t.rel, "abs": t.abs, "rel32": t.rel32, "abs32": t.abs32},
    }


def report_from_json(data: Mapping[str, Any]) -> ValidationReport:
    """A report from `report_json`'s document.

    Raises:
        ValueError: another format, or a malformed document.
    """
    if data.get("format") != REPORT_FORMAT:
        raise ValueError(
            f"a validation report of format {data.get('format')!r}, not {REPORT_FORMAT}"
        )
    try:
        env, p, t, reach = data["environment"], data["phases"], data["tolerance"], data["pickle"]
        return ValidationReport(
            bundle=data["bundle"],
            name=data["name"],
            version=data["version"],
            digest=data["digest"],
            passed=bool(data["passed"]),
            failure=Failure(data["failure"]) if data["failure"] else None,
            reason=data["reason"],
            examples=tuple(
                ExampleResult(
                    r["method"],
                    int(r["index"]),
                    ExampleKind(r["kind"]),
                    Outcome(r["outcome"]),
                    r["detail"],
                    r["p50_ms"],
                )
                for r in data["examples"]
            ),
            methods=tuple(
                MethodTiming(m["method"], m["calls"], m["p50_ms"]) for m in data["methods"]
            ),
            phases=Phases(p["environment"], p["load"], p["calls"], p["total"]),
            environment=Environment(
                env["mode"],
                env["python"],
                tuple((n, v) for n, v in env["packages"]),
                env["image"],
                tuple(env["isolation"]),
            ),
            pickle=PickleReach(
                tuple(
                    PickleReference(
                        r["module"], r["name"], r["kind"], tuple(r["reaches"]), r["where"]
                    )
                    for r in reach["references"]
                ),
                reach["opaque"],
                reach["error"],
            ),
            log_tail=tuple(data["log_tail"]),
            tolerance=Tolerance(t["rel"], t["abs"], t["rel32"], t["abs32"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a malformed validation report ({exc!r})") from exc

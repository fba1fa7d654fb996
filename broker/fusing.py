"""Which bundle models of a blueprint are fused into the broker, and why the others are not.

A model is *asked* to fuse by its own `fuse: true`, or by the blueprint's top-level
`fuse: true` or `modelwire run --fuse` (every `bundle:` and `catalog:` model that does
not say `fuse: false` or `isolate: true`). It *can* fuse when its bundle would load and
behave here as in a process of its own:

* it was dumped with this Python minor version (its pickle loads on no other);
* every requirement it pins (`name==version`) is installed here at that version (so
  no two fused models can need two versions of one distribution: one of them differs
  from the broker's);
* no other fused model ships a local module of the same name with other source
  (one process imports a module once: the second model would run the first's code);
* it does not say `isolate: true`.

`decide_fusing()` reads the bundles' manifests (nothing is unpickled) and returns a
verdict per bundle model; a model asked to fuse that cannot is an MW401 diagnostic at
its line, naming the reason, unless the blueprint lets it stay a process of its own.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelwire.broker.blueprint import Blueprint, ModelRef
from modelwire.bundle import Bundle
from modelwire.bundle.manifest import CODE_DIR, PYTHON
from modelwire.diagnostics import Diagnostic
from modelwire.errors import BundleError

__all__ = ["Verdict", "decide_fusing", "fusing_asked"]

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


@dataclass(frozen=True)
class Verdict:
    """What fusing means for one bundle model.

    Attributes:
        model: the model's name.
        asked: the blueprint (or `run --fuse`) asks for it to be fused.
        reason: why it cannot be fused; None when it can.
    """

    model: str
    asked: bool
    reason: str | None

    @property
    def fused(self) -> bool:
        """It runs inside the broker."""
        return self.asked and self.reason is None

    def describe(self) -> str:
        """One line for `modelwire check`."""
        if self.fused:
            return "fused: runs inside the broker"
        if self.reason is None:
            return "not fused (it could be: 'fuse: true')"
        return f"not fused: {self.reason}"


def fusing_asked(bp: Blueprint, requested: bool) -> bool:
    """Whether the blueprint or the command line asks for any model to be fused."""
    return requested or bp.fuse or any(m.fuse is not None or m.isolate for m in bp.models.values())


def _asked(m: ModelRef, everything: bool) -> bool:
    if m.isolate or m.kind == "address":
        return False
    if m.fuse is not None:
        return m.fuse
    return everything


def _pins(requirements: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Normalized distribution name -> (name as written, pinned version)."""
    out = {}
    for line in requirements:
        found = _PIN.match(line)
        if found:
            name, version = found.groups()
            out[re.sub(r"[-_.]+", "-", name).lower()] = (name, version)
    return out


def _installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _local_modules(path: Path) -> dict[str, str]:
    """The shipped source files of local modules (path below code/) -> their digests."""
    manifest = Bundle(path).manifest
    prefix = CODE_DIR + "/"
    return {
        rel[len(prefix) :]: digest
        for rel, digest in manifest.files.items()
        if rel.startswith(prefix)
    }


def _own_reason(m: ModelRef, path: Path) -> str | None:
    """Why the model cannot share the broker's environment, whatever else is fused."""
    if m.isolate:
        return "it is marked 'isolate: true'"
    try:
        manifest = Bundle(path).manifest
    except BundleError as exc:
        return str(exc)
    if manifest.python != PYTHON:
        return f"it was dumped with Python {manifest.python} and the broker runs Python {PYTHON}"
    for name, version in _pins(manifest.requirements).values():
        have = _installed(name)
        if have is None:
            return f"it needs {name}=={version}, which the broker's environment does not have"
        if have != version:
            return f"it needs {name}=={version} and the broker's environment has {name} {have}"
    return None


def decide_fusing(
    bp: Blueprint, bundles: Mapping[str, Path], requested: bool = False
) -> tuple[dict[str, Verdict], list[Diagnostic]]:
    """A verdict per bundle model (in blueprint order), and an MW401 per model asked to
    fuse that cannot.

    Args:
        bp: the blueprint.
        bundles: model -> its bundle (what the resolver found; catalog models included).
        requested: `run --fuse`: fuse every bundle model that does not opt out.
    """
    everything = requested or bp.fuse
    verdicts: dict[str, Verdict] = {}
    diags: list[Diagnostic] = []
    modules: dict[str, tuple[str, str]] = {}  # local source file -> (model, digest) so far
    for m in bp.models.values():
        path = bundles.get(m.name)
        if path is None:
            continue  # an address model, or one the resolver could not find (reported)
        asked = _asked(m, everything)
        reason = _own_reason(m, path)
        if reason is None:
            local = _local_modules(path)
            reason = _conflict(local, modules)
            if reason is None and asked:
                for rel, digest in local.items():
                    modules.setdefault(rel, (m.name, digest))
        verdicts[m.name] = Verdict(m.name, asked, reason)
        if asked and reason is not None:
            diags.append(
                Diagnostic(
                    "MW401",
                    f"model {m.name!r} cannot be fused into the broker: {reason}",
                    m.location,
                    help=f"add 'fuse: false' to model {m.name!r} to run it as a process of "
                    "its own, or dump it again in the broker's environment",
                )
            )
    return verdicts, diags


def _conflict(local: Mapping[str, str], modules: Mapping[str, tuple[str, str]]) -> str | None:
    """Why the model cannot join the models fused so far."""
    for rel, digest in sorted(local.items()):
        owner = modules.get(rel)
        if owner is not None and owner[1] != digest:
            module = rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            return (
                f"its local module {module!r} has other source than model {owner[0]!r}'s, "
                "and one process imports a module once"
            )
    return None

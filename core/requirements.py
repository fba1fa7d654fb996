"""Which installed distributions and local modules a set of Python modules needs.

Given module names (collected while pickling a model, plus the imports found in
its source), sort each into: the standard library (dropped), an installed
distribution (pinned at its installed version), or a *local* module from the
contributor's project (its source is shipped inside the bundle). Local modules
are read for their own imports, recursively.

Standard library only.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import re
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

__all__ = [
    "LocalModule",
    "Requirements",
    "imports_in_source",
    "normalize",
    "resolve_modules",
]

# Provided by every modelwire runtime; never listed as a model requirement.
_PROVIDED = frozenset({"modelwire", "cloudpickle", "__main__", "__mp_main__"})


def normalize(dist: str) -> str:
    """PEP 503 name normalization: `Scikit_Learn` -> `scikit-learn`."""
    return re.sub(r"[-_.]+", "-", dist).lower()


@dataclass(frozen=True)
class LocalModule:
    """A module of the contributor's project: `root` is the file or package directory."""

    name: str
    root: Path
    is_package: bool

    def files(self) -> list[tuple[str, Path]]:
        """(path inside the bundle's code/ folder, file on disk), sorted."""
        if not self.is_package:
            return [(self.root.name, self.root)]
        out = []
        for p in sorted(self.root.rglob("*.py")):
            if "__pycache__" in p.parts:
                continue
            out.append((str(Path(self.name) / p.relative_to(self.root)), p))
        return out


@dataclass
class Requirements:
    """Pinned requirements (`dist==version`, sorted) and the local modules to ship."""

    pins: dict[str, str] = field(default_factory=dict)  # normalized dist -> requirement line
    local: dict[str, LocalModule] = field(default_factory=dict)
    unresolved: set[str] = field(default_factory=set)

    def lines(self) -> list[str]:
        return [self.pins[k] for k in sorted(self.pins)]


@cache
def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(str(Path(p).resolve()) for p in {paths["stdlib"], paths["platstdlib"]} if p)


@cache
def _site_dirs() -> tuple[str, ...]:
    import site

    dirs = set(site.getsitepackages())
    user = site.getusersitepackages()
    if user:
        dirs.add(user)
    dirs.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    return tuple(str(Path(d).resolve()) for d in dirs)


@cache
def _top_level_dists() -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in md.packages_distributions().items()}


@cache
def _file_owners() -> dict[str, str]:
    """Installed file (resolved) -> distribution name; built once, only when needed."""
    owners: dict[str, str] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        for f in dist.files or ():
            if f.suffix in (".py", ".so", ".pyd") or f.name == "__init__.py":
                try:
                    owners[str(Path(str(dist.locate_file(f))).resolve())] = name
                except (OSError, ValueError):
                    continue
    return owners


def _module_file(name: str) -> str | None:
    mod = sys.modules.get(name)
    file = getattr(mod, "__file__", None) if mod is not None else None
    if file is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        file = spec.origin if spec is not None and spec.has_location else None
    return str(Path(file).resolve()) if file else None


def _is_stdlib(top: str, file: str | None) -> bool:
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return True
    if file is None:
        return False
    return any(file.startswith(d + "/") for d in _stdlib_dirs()) and not any(
        file.startswith(d + "/") for d in _site_dirs()
    )


def _dist_for(module: str, file: str | None) -> str | None:
    top = module.split(".", 1)[0]
    dists = _top_level_dists().get(top, ())
    unique = sorted({normalize(d) for d in dists})
    if len(unique) == 1:
        return dists[0]
    if file is not None:
        owner = _file_owners().get(file)
        if owner is not None:
            return owner
    return dists[0] if dists else None


def imports_in_source(source: str) -> set[str]:
    """Absolute module names imported anywhere in `source` (relative imports skipped)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def resolve_modules(modules: Iterable[str]) -> Requirements:
    """Sort module names into pinned distributions and local modules.

    Local modules are scanned for their own imports, which are resolved too.
    """
    req = Requirements()
    todo = sorted(set(modules))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        top = name.split(".", 1)[0]
        # collections.namedtuple tags its generated __new__ with this pseudo-module
        if top in _PROVIDED or top.startswith("namedtuple_"):
            continue
        file = _module_file(name)
        if _is_stdlib(top, file):
            continue
        dist = _dist_for(name, file)
        if dist is not None:
            try:
                version = md.version(dist)
            except md.PackageNotFoundError:
                req.unresolved.add(top)
                continue
            key = normalize(dist)
            if normalize(key) not in _PROVIDED:
                req.pins[key] = f"{key}=={version}"
            continue
        if top in req.local:
            continue
        top_file = _module_file(top)
        if top_file is None:
            req.unresolved.add(top)
            continue
        path = Path(top_file)
        is_pkg = path.name == "__init__.py"
        local = LocalModule(top, path.parent if is_pkg else path, is_pkg)
        req.local[top] = local
        for _, f in local.files():
            todo.extend(sorted(imports_in_source(f.read_text(encoding="utf-8", errors="replace"))))
    return req

"""Which installed distributions and local modules a set of Python modules needs.

Given module names (collected while pickling a model, plus the imports found in
its source), sort each into: the standard library (dropped), an installed
distribution (pinned at its installed version), or a *local* module from the
contributor's project (its source is shipped inside the bundle). Local modules
are read for their own imports, recursively. Only the local modules the model
reaches are shipped (with their parent packages' `__init__.py`), never the rest
of the project's tree: unrelated scripts would leak into the bundle and their
imports into the requirements.

Standard library only.
"""

from __future__ import annotations

import ast
import importlib.machinery
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
    "SCRIPT_MODULE",
    "LocalModule",
    "Requirements",
    "imports_in_source",
    "module_imports",
    "normalize",
    "resolve_modules",
]

# Provided by every modelwire runtime; never listed as a model requirement.
# The module name `modelwire dump FILE.py:ATTR` runs a script under (pickled by value).
SCRIPT_MODULE = "__modelwire_script__"
_PROVIDED = frozenset({"modelwire", "cloudpickle", "__main__", "__mp_main__", SCRIPT_MODULE})


def normalize(dist: str) -> str:
    """PEP 503 name normalization: `Scikit_Learn` -> `scikit-learn`."""
    return re.sub(r"[-_.]+", "-", dist).lower()


@dataclass(frozen=True)
class LocalModule:
    """A module of the contributor's project: `file` is its source (`__init__.py` for a package)."""

    name: str
    file: Path
    is_package: bool

    def files(self) -> list[tuple[str, Path]]:
        """(path inside the bundle's code/ folder, file on disk)."""
        parts = self.name.split(".")
        if self.is_package:
            parts.append(self.file.name)
        else:
            leaf = parts.pop()
            # a source file is named after the module (`spec_from_file_location` may differ)
            parts.append(leaf + ".py" if self.file.suffix == ".py" else self.file.name)
        return [("/".join(parts), self.file)]


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
        spec = _find_spec(name)
        file = spec.origin if spec is not None and spec.has_location else None
    return str(Path(file).resolve()) if file else None


def _find_spec(name: str) -> importlib.machinery.ModuleSpec | None:
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _is_namespace_package(name: str) -> bool:
    spec = _find_spec(name)
    return spec is not None and spec.origin is None and bool(spec.submodule_search_locations)


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
    return module_imports(source)[0]


def module_imports(
    source: str, module: str | None = None, *, is_package: bool = False
) -> tuple[set[str], set[str]]:
    """Modules that `source` imports: (certainly modules, names that may be submodules).

    `from pkg import name` imports `pkg` and, when `name` is a submodule,
    `pkg.name`; the second set holds such candidates. Relative imports are
    resolved against `module` (the name of the module the source belongs to,
    a package's own name if `is_package`), and skipped without it.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set(), set()
    package = (module if is_package else module.rpartition(".")[0]) if module else None
    found: set[str] = set()
    maybe: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if package is None or node.level - 1 > len(parts) - 1:
                    continue
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                target = f"{base}.{node.module}" if node.module else base
            elif node.module:
                target = node.module
            else:
                continue
            found.add(target)
            maybe.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return found, maybe - found


def resolve_modules(modules: Iterable[str], maybe: Iterable[str] = ()) -> Requirements:
    """Sort module names into pinned distributions and local modules.

    Local modules are scanned for their own imports, which are resolved too; a
    local module's parent packages are local modules as well.

    Args:
        modules: names of modules the model needs.
        maybe: names that are needed only if they are modules at all (from
            `from pkg import name`); only local ones are looked up, so checking
            them imports nothing from installed distributions.
    """
    req = Requirements()
    todo = [(n, True) for n in sorted(set(maybe))] + [(n, False) for n in sorted(set(modules))]
    seen: set[str] = set()
    local_tops: set[str] = set()
    while todo:
        name, optional = todo.pop()
        if name in seen or not name:
            continue
        top = name.split(".", 1)[0]
        # collections.namedtuple tags its generated __new__ with this pseudo-module
        if top in _PROVIDED or top.startswith("namedtuple_"):
            continue
        # `pkg` itself comes off the stack first, so `pkg`'s kind is known by now
        if optional and top not in local_tops:
            continue
        seen.add(name)
        if _is_stdlib(top, _module_file(top)):
            continue
        file = _module_file(name)
        dist = None if top in local_tops else _dist_for(name, file)
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
        if file is None:
            if not optional and not _is_namespace_package(name):
                req.unresolved.add(top)
            continue
        path = Path(file)
        is_pkg = path.name == "__init__.py"
        req.local[name] = LocalModule(name, path, is_pkg)
        local_tops.add(top)
        parents = name.split(".")[:-1]
        todo.extend((".".join(parents[:i]), False) for i in range(1, len(parents) + 1))
        if path.suffix == ".py":
            found, candidates = module_imports(
                path.read_text(encoding="utf-8", errors="replace"), name, is_package=is_pkg
            )
            todo.extend((n, True) for n in sorted(candidates))
            todo.extend((n, False) for n in sorted(found))
    return req

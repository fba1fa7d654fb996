"""Meta tests: packaging, import layers, light imports, `__all__` honesty."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import modelwire

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_component_directory_is_a_listed_package():
    """A new subpackage cannot silently drop out of the wheel."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    mapped = setuptools["package-dir"]
    assert listed == set(mapped)
    for package, directory in mapped.items():
        assert (ROOT / directory / "__init__.py").is_file(), (package, directory)
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk == set(mapped.values())
    assert not (ROOT / "modelwire").exists(), "a modelwire/ folder would shadow the package"


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(modelwire.__path__, "modelwire."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_all_names_exist(name: str):
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", ()):
        assert hasattr(module, attr), f"{name}.__all__ lists missing {attr!r}"


def _loaded_after(statement: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{statement}\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


def test_root_package_and_errors_import_nothing_heavy():
    loaded = _loaded_after("import modelwire, modelwire.errors, modelwire.config")
    assert not {"grpc", "numpy", "google.protobuf", "yaml", "networkx"} & loaded


def test_runtime_does_not_load_build_or_composition_tools():
    # grpcio itself imports the (empty) grpc_tools package to probe for it; protoc
    # is the heavy part and must stay out of a serving process.
    loaded = _loaded_after("import modelwire.runtime.server, modelwire.runtime.client")
    assert not {"grpc_tools.protoc", "docker", "networkx", "yaml"} & loaded


def test_import_layers_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is part of the dev extras"
    proc = subprocess.run([lint], check=False, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr

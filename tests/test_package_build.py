"""The project's own wheel, built as users and packagers build it: `python -m build` (sdist,
then the wheel from it) and `pip wheel .` give the same bytes under SOURCE_DATE_EPOCH, from
copies of the tree with different file times; the build warns of nothing deprecated; and
the metadata says what a plain `pip install` gets."""

from __future__ import annotations

import email.parser
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib

from tests.source_tree import ROOT, copy_source_tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
WHEEL = "modelwire-0.1.0-py3-none-any.whl"


@dataclass
class Built:
    wheels: dict[str, Path]  # how it was built -> the wheel
    output: dict[str, str]  # how it was built -> what the build printed


def _run(argv: list[str], cwd: Path) -> str:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("package-build")
    first = copy_source_tree(base / "first")
    second = copy_source_tree(base / "second")
    for path in [second, *second.rglob("*")]:  # other file times: only the epoch may count
        os.utime(path, (1_900_000_000, 1_900_000_000), follow_symlinks=False)
    wheels, output = {}, {}
    for name, tree in (("build", first), ("build, other mtimes", second)):
        out = base / f"dist-{len(wheels)}"
        output[name] = _run([sys.executable, "-m", "build", "--no-isolation", "-o", str(out)], tree)
        wheels[name] = out / WHEEL
    out = base / "pip-wheel"
    pip = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation"]
    output["pip wheel"] = _run([*pip, "-w", str(out), "."], first)
    wheels["pip wheel"] = out / WHEEL
    return Built(wheels, output)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_wheel_is_byte_reproducible_under_source_date_epoch(built):
    digests = {how: _sha256(wheel) for how, wheel in built.wheels.items()}
    assert len(set(digests.values())) == 1, digests


@pytest.mark.parametrize("how", ["build", "pip wheel"])
def test_the_build_warns_of_nothing_deprecated(built, how):
    """setuptools 77+ deprecates `project.license` as a table; no warning class at all."""
    output = built.output[how]
    assert not re.search(r"(?i)deprecat", output), output
    assert not re.search(r"\b[A-Z]\w*Warning\b", output), output


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        return email.parser.BytesParser().parsebytes(
            archive.read("modelwire-0.1.0.dist-info/METADATA")
        )


def test_the_license_is_an_spdx_expression_with_its_text_in_the_wheel(built):
    wheel = built.wheels["build"]
    metadata = _metadata(wheel)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["License"] is None
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("modelwire-0.1.0.dist-info/licenses/LICENSE")
    assert shipped == (ROOT / "LICENSE").read_bytes()
    assert shipped.startswith(b"                                 Apache License\n")


def test_a_plain_install_gets_grpcio_tools_and_the_build_extra_is_an_empty_alias(built):
    metadata = _metadata(built.wheels["build"])
    requires = metadata.get_all("Requires-Dist") or []
    assert "grpcio-tools>=1.60" in requires  # no marker: not an extra
    assert "build" in (metadata.get_all("Provides-Extra") or [])
    assert not [r for r in requires if 'extra == "build"' in r]


def test_every_module_of_every_package_folder_is_in_the_wheel(built):
    with zipfile.ZipFile(built.wheels["build"]) as archive:
        names = set(archive.namelist())
    mapped = PYPROJECT["tool"]["setuptools"]["package-dir"]
    expected = set()
    for package, folder in mapped.items():
        for path in (ROOT / folder).glob("*.py"):
            expected.add(f"{package.replace('.', '/')}/{path.name}")
    assert expected <= names, sorted(expected - names)
    assert {"modelwire/py.typed", "modelwire/codegen/Dockerfile.template"} <= names

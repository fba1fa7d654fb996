"""The wheelhouse's pure parts (no Docker engine needed): which wheels fit an image, and
which of modelwire's requirements an image gets."""

from __future__ import annotations

import importlib.metadata as md
import re
from pathlib import Path

import tomllib

from modelwire.containers.wheelhouse import NOT_IN_IMAGES, Target, platforms, runtime_pins

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())


def test_glibc_platforms_run_from_the_images_glibc_down_with_the_legacy_names():
    tags = platforms("x86_64", "glibc", "2.36")
    assert tags[0] == "manylinux_2_36_x86_64"
    assert tags[-1] == "linux_x86_64"
    assert "manylinux_2_5_x86_64" in tags and "manylinux_2_4_x86_64" not in tags
    # protobuf's binary wheel is tagged manylinux2014 only: without the name, pip takes
    # its pure-Python wheel
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} < set(tags)
    assert "manylinux_2_37_x86_64" not in tags


def test_an_old_glibc_gets_no_newer_wheels():
    tags = platforms("aarch64", "glibc", "2.12")
    assert tags[0] == "manylinux_2_12_aarch64"
    assert "manylinux2014_aarch64" not in tags and "manylinux2010_aarch64" in tags


def test_musl_images_get_musllinux_wheels():
    assert platforms("x86_64", "", "") == (
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
        "linux_x86_64",
    )


def test_pip_downloads_binary_wheels_for_the_images_python():
    args = Target("3.12", ("manylinux_2_17_x86_64",)).pip_args()
    assert args == [
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        "--abi",
        "cp312",
        "--abi",
        "abi3",
        "--abi",
        "none",
        "--platform",
        "manylinux_2_17_x86_64",
    ]


def test_images_get_modelwires_run_time_requirements_at_the_installed_versions():
    """Read from modelwire's metadata, so the list cannot drift from pyproject.toml; but for
    grpcio-tools (protoc), a dependency that only `modelwire stubs` needs: images serve."""
    names = [re.split(r"[<>=!~; \[]", r)[0] for r in PYPROJECT["project"]["dependencies"]]
    assert "grpcio-tools" in names
    assert set(NOT_IN_IMAGES) == {"grpcio-tools"}
    served = [n for n in names if n not in NOT_IN_IMAGES]
    assert runtime_pins() == sorted(f"{n}=={md.version(n)}" for n in served)

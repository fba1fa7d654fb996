"""The docker marker's rules, checked by running pytest on a tiny suite with a `docker`
that always fails (no Docker engine needed): without CI the docker test is skipped with
the reason STYLE.md §11 gives; with CI=true the same run fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SUITE = """
import pytest

@pytest.mark.docker
def test_needs_docker():
    pass

def test_plain():
    pass
"""


INI = """[pytest]
asyncio_default_fixture_loop_scope = function
markers =
    docker: needs a Docker engine
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text(INI)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(
        "#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n"
    )
    (fake / "docker").chmod(0o755)
    return tmp_path


def run_suite(suite: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = f"{suite / 'bin'}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.docker.engine",
            "-rs",
            "-p",
            "no:cacheprovider",
            "test_suite.py",
        ],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_without_an_engine_docker_tests_skip_with_the_reason(suite):
    proc = run_suite(suite, ci=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 1 skipped" in proc.stdout
    assert "SKIPPED [1] test_suite.py:4: docker engine not reachable ('docker info' failed)" in (
        proc.stdout
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_in_ci_a_skipped_docker_test_fails_the_run(suite, ci):
    proc = run_suite(suite, ci=ci)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "docker test skipped in CI (docker engine not reachable ('docker info' failed))" in (
        proc.stdout
    )
    assert "1 passed" in proc.stdout


def test_ci_false_is_not_ci(suite):
    assert run_suite(suite, ci="false").returncode == 0

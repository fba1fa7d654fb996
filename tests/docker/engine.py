"""The `docker` marker's rules (STYLE.md §11), a pytest plugin that tests/conftest.py loads.

- A test marked `@pytest.mark.docker` is skipped, with the reason
  `docker engine not reachable ('docker info' failed)`, when `docker info` fails.
- In CI (`CI=true`) a docker test that is skipped for any reason fails instead:
  a CI run where the docker tests did not run is not green.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Generator

import pytest

SKIP_REASON = "docker engine not reachable ('docker info' failed)"


@functools.cache
def docker_reachable() -> bool:
    """`docker info` succeeds (asked once per session)."""
    try:
        proc = subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("docker")]
    if marked and not docker_reachable():
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("docker")
        and in_ci()
    ):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (
            f"docker test skipped in CI ({reason}): CI must run the docker tests "
            "(scripts/docker-setup.sh starts an engine and makes the base image)"
        )
    return report

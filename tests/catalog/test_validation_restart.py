"""`catalog serve --validate ...` as real subprocesses: a catalog killed mid-validation runs the
job again when it next starts (and what the killed one ran does not outlive it), verdicts
outlive restarts, and how the mode is chosen and announced."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result

from modelwire.bundle import dump
from modelwire.bundle.report import Failure, report_from_json
from modelwire.catalog.client import CatalogClient
from modelwire.config import CatalogSettings
from tests.catalog.helpers import CatalogProcess, wait_until
from tests.fixtures.models import hostile, tokenizer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


def _client(server: CatalogProcess, token: str) -> CatalogClient:
    return CatalogClient(CatalogSettings(server.address, token))


def _leftovers() -> list[str]:
    """Command lines of validation workers, and of anything running from a job's folder."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "modelwire.catalog.validation_worker" in argv or "/modelwire-catalog-job-" in argv:
            found.append(argv)
    return found


def test_a_killed_catalog_validates_again_on_start_and_verdicts_outlive_restarts(
    tmp_path: Path, cli: Callable[..., Result]
):
    hang = dump(hostile.hangs_at_load(), "hang", tmp_path / "hang")
    examples = {"tokenize": [{"text": "a b c", "limit": np.int32(5)}]}
    words = dump(tokenizer.model(), "words", tmp_path / "words", examples=examples)
    data = tmp_path / "data"
    token = cli("catalog", "user", "add", "alice", "--data", str(data)).stdout.splitlines()[-1]
    first = CatalogProcess(data, "--validate", "venv", "--validate-load-timeout", "300")
    try:
        with _client(first, token) as client:
            client.push(hang)
            wait_until(
                lambda: client.validation("hang:1.0.0")[1].note.startswith("serving the bundle"),
                300,
                "the hanging model to be served in its venv",
            )
    finally:
        first.kill()  # SIGKILL, mid-validation
    assert "NOT isolated" in first.stderr
    wait_until(lambda: not _leftovers(), 30, "what the killed catalog ran to stop")

    second = CatalogProcess(data, "--validate", "venv", "--validate-load-timeout", "5")
    try:
        with _client(second, token) as client:
            _, hung = client.wait_validated("hang:1.0.0", 300)
            client.push(words)
            _, good = client.wait_validated("words:1.0.0", 300)
        assert second.terminate() == 0
    finally:
        second.kill()
    assert "1 job(s) of a stopped catalog queued again" in second.stderr
    assert hung.status == "failed" and hung.report is not None
    assert report_from_json(hung.report).failure is Failure.LOAD_TIMEOUT
    assert hung.reason.startswith("the model did not report SERVING within 5 s (--load-timeout)")
    assert good.status == "passed", good.reason

    third = CatalogProcess(data)  # validation off: what was found stays found
    try:
        with _client(third, token) as client:
            assert client.validation("hang:1.0.0")[1] == hung
            assert client.validation("words:1.0.0")[1] == good
            assert [m.name for m in client.search(validated=True)] == ["words"]
    finally:
        third.kill()


def test_a_stopped_catalog_gives_its_job_back_and_a_catalog_that_cannot_validate_refuses_it(
    tmp_path: Path, cli: Callable[..., Result]
):
    hang = dump(hostile.hangs_at_load(), "hang", tmp_path / "hang")
    data = tmp_path / "data"
    token = cli("catalog", "user", "add", "alice", "--data", str(data)).stdout.splitlines()[-1]
    server = CatalogProcess(data, "--validate", "venv", "--validate-load-timeout", "300")
    try:
        with _client(server, token) as client:
            client.push(hang)
            wait_until(lambda: client.validation("hang:1.0.0")[1].running, 60, "the job to run")
        assert server.terminate() == 0  # SIGTERM: the job goes back to the queue
    finally:
        server.kill()
    assert _leftovers() == []
    off = CatalogProcess(data)
    try:
        with _client(off, token) as client:
            validation = client.validation("hang:1.0.0")[1]
            assert (validation.status, validation.running, validation.note) == (
                "pending",
                False,
                "queued again: the catalog running it stopped",
            )
        args = ["publish", "hang:1.0.0", "--description", "d", "--category", "c"]
        refused = cli(*args, env={"MODELWIRE_CATALOG": off.address, "MODELWIRE_TOKEN": token})
        assert refused.stderr == (
            f"error: {off.address} PublishModel: FAILED_PRECONDITION: hang:1.0.0 has not been "
            "validated yet, and this catalog does not validate (catalog serve --validate off); "
            "ask its operator, or publish it anyway with --force (recorded, and shown with it)\n"
        )
    finally:
        off.kill()


def test_auto_validates_in_docker_only_when_an_engine_answers_else_says_it_is_off(tmp_path: Path):
    server = CatalogProcess(tmp_path / "data", "--init", "--validate", "auto", env=NO_ENGINE)
    try:
        assert server.terminate() == 0
    finally:
        server.kill()
    (line,) = [x for x in server.stderr.splitlines() if "not validated" in x]
    assert '"level": "warning"' in line
    assert "pushed versions are not validated: no Docker engine answers (" in line
    assert "--validate venv validates without a sandbox" in line


def test_docker_validation_without_an_engine_is_refused_at_start(
    tmp_path: Path, cli: Callable[..., Result]
):
    data = str(tmp_path / "data")
    args = ["--data", data, "--init", "--validate", "docker"]
    result = cli("catalog", "serve", *args, env=NO_ENGINE)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("error: validate='docker': no Docker engine answers (")
    assert result.stderr.endswith("; or choose --validate venv or off\n")
    assert not Path(data).exists()  # refused before a new catalog was made for nothing

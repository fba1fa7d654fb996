"""A validating catalog (venv mode, in this process): every pushed version pending, then
passed or failed with its report; `show`, `search --validated` and `publish` (refused,
forced, waiting) on those results; and proof that the catalog's process never imports or
unpickles what was pushed."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result

from modelwire.bundle import dump
from modelwire.bundle.report import Failure, render_report, report_from_json
from modelwire.catalog.listing import ModelInfo
from modelwire.config import ValidationConfig
from tests.catalog.helpers import Catalog
from tests.fixtures.models import hostile, tokenizer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

VENV = ValidationConfig(mode="venv", load_timeout=10, run_timeout=60, job_timeout=600, repeat=1)
FORCE = "or publish it anyway with --force (recorded, and shown with it)"


@dataclass
class Validating:
    catalog: Catalog
    token: str
    env: dict[str, str]
    bundles: dict[str, Path]
    pushed: dict[str, ModelInfo]  # as the push answered, before any validation ended


@pytest.fixture(scope="module")
def validating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Validating]:
    """A venv-validating catalog with `words` (answers as recorded) and `dice` (answers at
    random) pushed, and both validations ended."""
    root = tmp_path_factory.mktemp("validating")
    words = {"tokenize": [{"text": "the cat sat", "limit": np.int32(2)}]}
    bundles = {
        "words": dump(tokenizer.model(), "words", root / "words", examples=words),
        "dice": dump(hostile.answers_at_random(), "dice", root / "dice", examples={"roll": [1.0]}),
        "hang": dump(hostile.hangs_at_load(), "hang", root / "hang"),
    }
    catalog = Catalog.start(root / "data", validation=VENV)
    token = catalog.user("alice")
    env = {"MODELWIRE_CATALOG": catalog.address, "MODELWIRE_TOKEN": token}
    pushed = {}
    with catalog.client(token) as client:
        for name in ("words", "dice"):
            pushed[name] = client.push(bundles[name])[0]
        for name in ("words", "dice"):
            client.wait_validated(f"{name}:1.0.0", 600)
    yield Validating(catalog, token, env, bundles, pushed)
    catalog.stop()


def test_a_pushed_version_is_pending_then_passed_or_failed_with_its_report(
    validating: Validating,
):
    assert {n: i.validation for n, i in validating.pushed.items()} == {
        "words": "pending",
        "dice": "pending",
    }
    with validating.catalog.client(validating.token) as client:
        words = client.validation("words:1.0.0")[1]
        dice = client.validation("dice:1.0.0")[1]
    assert (words.status, words.mode, words.reason, words.running) == ("passed", "venv", "", False)
    assert (dice.status, dice.mode, dice.running) == ("failed", "venv", False)
    assert words.report is not None and dice.report is not None
    passed, failed = report_from_json(words.report), report_from_json(dice.report)
    assert (passed.bundle, passed.passed, passed.examples_kind) == ("words:1.0.0", True, "recorded")
    assert failed.failure is Failure.ANSWER
    assert dice.reason == failed.reason
    assert failed.reason.startswith(
        "recorded example 0 of 'roll' was answered differently: value: expected "
    )
    isolation = passed.environment.isolation
    assert (
        isolation[0] == "a subprocess of this machine: its network and file system are not isolated"
    )
    if os.geteuid() == 0:  # the catalog runs the model as nobody, never as root
        assert isolation[1].startswith("user nobody (uid ")


def test_show_prints_the_validation_and_its_report(
    validating: Validating, cli: Callable[..., Result]
):
    with validating.catalog.client(validating.token) as client:
        dice = client.validation("dice:1.0.0")[1]
    assert dice.report is not None
    result = cli("show", "dice:1.0.0", env=validating.env)
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert f"  validation   failed (answer): {dice.reason}" in lines
    assert render_report(report_from_json(dice.report)) in result.stdout
    assert result.stdout.index("  validation   failed") < result.stdout.index("syntax = ")
    shown = cli("show", "words", env=validating.env).stdout
    assert re.search(r"^  validation   passed \(venv, recorded examples, \d+\.\d s\)$", shown, re.M)
    assert "validation of words 1.0.0 (words:1.0.0): PASSED" in shown


def test_search_validated_lists_only_versions_that_passed(
    validating: Validating, cli: Callable[..., Result]
):
    with validating.catalog.client(validating.token) as client:
        everything = {m.name: m.validation for m in client.search()}
        validated = [m.name for m in client.search(validated=True)]
    assert everything == {"dice": "failed", "words": "passed"}
    assert validated == ["words"]
    listed = json.loads(cli("search", "--json", "--validated", env=validating.env).stdout)
    assert [(m["name"], m["validation"]) for m in listed] == [("words", "passed")]
    table = cli("search", "--validated", env=validating.env)
    assert table.stdout.splitlines()[1].split()[:4] == ["words", "1.0.0", "private", "passed"]
    assert len(table.stdout.splitlines()) == 2


def test_publish_refuses_a_failed_version_unless_its_owner_forces_it(
    validating: Validating, cli: Callable[..., Result]
):
    address, env = validating.catalog.address, validating.env
    with validating.catalog.client(validating.token) as client:
        reason = client.validation("dice:1.0.0")[1].reason
    args = ["publish", "dice:1.0.0", "--description", "Rolls a die", "--category", "games"]
    refused = cli(*args, env=env)
    assert (refused.exit_code, refused.stdout, refused.stderr) == (
        1,
        "",
        f"error: {address} PublishModel: FAILED_PRECONDITION: dice:1.0.0 failed its "
        f"validation (answer): {reason}; push a fixed version, {FORCE}\n",
    )
    forced = cli(*args, "--force", env=env)
    assert (forced.exit_code, forced.stdout) == (0, "published dice:1.0.0 (games)\n")
    shown = cli("show", "dice:1.0.0", env=env).stdout.splitlines()
    (line,) = [x for x in shown if x.startswith("  forced")]
    assert re.fullmatch(
        r"  forced       published with --force by alice at \S+Z, while its validation was failed",
        line,
    )
    # someone else's --force is refused as any publish of theirs, and records nothing
    bob = {**env, "MODELWIRE_TOKEN": validating.catalog.user("bob")}
    theirs = cli(*args, "--force", env=bob)
    assert theirs.stderr.endswith(
        "PERMISSION_DENIED: only the owner of dice:1.0.0 can publish it\n"
    )
    with validating.catalog.client(validating.token) as client:
        assert client.validation("dice:1.0.0")[1].forced_by == "alice"
    good = cli("publish", "words:1.0.0", "--description", "Words", "--category", "nlp", env=env)
    assert (good.exit_code, good.stdout) == (0, "published words:1.0.0 (nlp)\n")


def test_publish_refuses_a_pending_version_and_wait_waits_for_its_verdict(
    validating: Validating, cli: Callable[..., Result]
):
    address, env = validating.catalog.address, validating.env
    with validating.catalog.client(validating.token) as client:
        info, _ = client.push(validating.bundles["hang"])
    assert info.validation == "pending"
    args = ["publish", "hang:1.0.0", "--description", "Hangs", "--category", "tests"]
    refused = cli(*args, env=env)
    assert refused.exit_code == 1
    head = (
        f"error: {address} PublishModel: FAILED_PRECONDITION: hang:1.0.0 is still being validated ("
    )
    assert refused.stderr.startswith(head), refused.stderr
    assert refused.stderr.endswith(
        "); publish it once 'modelwire show hang:1.0.0' says passed (publish --wait SECONDS "
        f"waits for it), {FORCE}\n"
    )
    waited = cli(*args, "--wait", "600", env=env)
    assert waited.exit_code == 1
    err = waited.stderr.splitlines()
    assert err[0] == "waiting up to 600 s for the validation of hang:1.0.0"
    assert err[1].startswith(
        "validation   failed (load-timeout): the model did not report SERVING within 10 s"
    )
    assert err[2].startswith(
        f"error: {address} PublishModel: FAILED_PRECONDITION: hang:1.0.0 failed its validation "
        "(load-timeout): "
    )


MARKED = '''\
"""A model that notes where it is imported and where it is unpickled, in MARKS."""

import json
import logging
import os
import sys

from modelwire import Model

MARKS = {marks!r}


def _mark(event):
    with open(MARKS, "a") as out:
        record = {{"event": event, "pid": os.getpid(), "executable": sys.executable}}
        out.write(json.dumps(record) + "\\n")


_mark("import")


class _Unpickled:
    def __reduce__(self):
        return _mark, ("unpickle",)


def model():
    trigger = _Unpickled()

    def echo(x: float) -> float:
        _ = trigger
        return x

    return Model(echo=echo)
'''


def test_the_catalog_process_never_imports_or_unpickles_a_pushed_bundle(
    validating: Validating, tmp_path: Path
):
    """The bundle notes every import of its module and every unpickling of its model: the
    validation's environment does both, this process (the catalog's) neither."""
    module = f"marked_{uuid.uuid4().hex[:8]}"
    shared = Path(tempfile.mkdtemp(prefix="modelwire-marks-", dir="/tmp"))
    try:
        marks = shared / "marks.jsonl"
        marks.touch()
        for path, mode in ((shared, 0o777), (marks, 0o666)):
            path.chmod(mode)  # the model may run as nobody
        source = tmp_path / "src"
        source.mkdir()
        (source / f"{module}.py").write_text(MARKED.format(marks=str(marks)))
        bundle = tmp_path / "marked"
        script = textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(source)!r})
            from modelwire import dump
            import {module}
            dump({module}.model(), "marked", {str(bundle)!r}, examples={{"echo": [2.5]}})
            """
        )
        dumper = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False
        )
        assert dumper.returncode == 0, dumper.stderr
        before = marks.read_text().splitlines()
        with validating.catalog.client(validating.token) as client:
            client.push(bundle)
            _, verdict = client.wait_validated("marked:1.0.0", 600)
        assert verdict.status == "passed", verdict.reason
        records = [json.loads(x) for x in marks.read_text().splitlines()[len(before) :]]
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert module not in sys.modules
    assert [r for r in records if r["pid"] == os.getpid()] == []
    # this interpreter (the catalog's, and its validation worker's) did neither
    assert [r for r in records if r["executable"] == sys.executable] == []
    # ... while the validation's own venv did both, so the marks do work
    sandboxed = {r["event"] for r in records if "/modelwire-catalog-job-" in r["executable"]}
    assert sandboxed == {"import", "unpickle"}, records


BLUEPRINT = """\
name: game
models:
  words: {catalog: words:1.0.0}
  dice: {catalog: dice}
methods:
  split:
    steps:
      tokens: {call: words.tokenize, with: $input}
    output: tokens
  roll:
    steps:
      rolled: {call: dice.roll, with: $input}
    output: rolled
"""


def test_check_warns_of_a_catalog_model_whose_version_did_not_pass_its_validation(
    validating: Validating,
    cli: Callable[..., Result],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    path = tmp_path / "game.yaml"
    path.write_text(BLUEPRINT)
    env = {**validating.env, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with caplog.at_level(logging.WARNING, logger="modelwire.broker.resolve"):
        result = cli("check", str(path), env=env)
    assert result.exit_code == 0, result.stderr
    assert [r.getMessage() for r in caplog.records if r.name == "modelwire.broker.resolve"] == [
        "model 'dice': catalog version dice:1.0.0 is not validated (its validation: failed)"
    ]
